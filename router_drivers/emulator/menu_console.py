"""The emulated Netopia R-series VT100 menu console (R9100 style), in firmware variants.

Screens are drawn with cursor addressing; the highlight bar is reverse video; Down/Up
move it (round the menu, or stopping at its ends), Return selects an item or edits a
field, Escape goes back. How an edit is saved follows `EmulatorOptions.save_model`: a
"Save Changes..." item with a confirm screen, Escape answered by a Y/N question, or
Return committing each field. The edit screen shows *saved* values; "Quick View" shows
what the router *runs*. Restart System (Utilities & Diagnostics) asks to confirm, then
drops every session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Network
from typing import Literal

from ..base import WanConfig
from .login import LoginWords, login
from .state import RouterState
from .terminal import Terminal

FOOTER = "Return/Enter accepts * Tab toggles * ESC cancels"
STATUS_ROW, FOOTER_ROW = 20, 22
DOWN, UP, ESC, RETURN = "\x1b[B", "\x1b[A", "\x1b", "\r"
REVERSE, NORMAL = "\x1b[7m", "\x1b[0m"
LAN_ADDRESS, LAN_MASK = "192.168.1.1", "255.255.255.0"
SAVE_PROMPT = "Save changes? (Y/N) "


def at(row: int, col: int) -> str:
    return f"\x1b[{row + 1};{col + 1}H"


LOGIN = LoginWords(
    refused="\x1b[2J\x1b[H\r\nToo many failed logins: locked out.\r\n",
    greeting="\x1b[2J\x1b[H\r\nNetopia R9100 (dslfailover emulator)\r\n\r\n",
    name_prompt="Enter a Name: ", hidden_prompt="Enter a Password: ", always_hidden=True,
    wrong="Invalid name or password.\r\n", locked="Too many failed logins: locked out.\r\n")


@dataclass
class Element:
    row: int
    col: int
    label: str
    kind: Literal["item", "field"] = "item"
    key: str | None = None      # field: which WAN value it edits
    value_col: int = 0
    target: str | None = None   # item: the screen (or action) it opens


@dataclass
class Screen:
    name: str
    title: str
    elements: list[Element]
    text: list[tuple[int, int, str]] = field(default_factory=list)
    selected: int = 0
    parent: str = "main"


MAIN_OTHERS = ["Easy Setup...", "WAN Configuration...", "Statistics & Logs...",
               "Quick Menus..."]
SYSCONF_OTHERS = ["Filter Sets...", "Network Address Translation (NAT)...",
                  "Date and Time...", "Console Configuration...", "Security..."]
UTILITIES_OTHERS = ["Ping...", "Trace Route...", "Telnet Client...",
                    "Revert to Factory Defaults"]


class MenuConsole:
    def __init__(self, state: RouterState, term: Terminal) -> None:
        self.state = state
        self.opts = state.options
        self.term = term
        self.pending: dict[str, str] = {}
        self.asking_save = False  # the Y/N question after Escape is on screen
        self.screen = self.build("main")

    # --- screens -----------------------------------------------------------------------

    def build(self, name: str) -> Screen:
        m, o = self.opts.menu, self.opts
        def items(labels: list[tuple[str, str | None]]) -> list[Element]:
            return [Element(4 + i, 20, label, target=target)
                    for i, (label, target) in enumerate(labels)]
        if name == "main":
            labels = [(MAIN_OTHERS[0], None), (MAIN_OTHERS[1], None), (m["sysconf"], "sysconf"),
                      (m["utilities"], "utilities"), (MAIN_OTHERS[2], None),
                      (MAIN_OTHERS[3], None), (m["status"], "status")]
            elements = [Element(4 + i % 4, 10 + 36 * (i // 4), label, target=target)
                        for i, (label, target) in enumerate(labels)]
            return Screen("main", m["main_title"], elements)
        if name == "sysconf":
            first = (m["netproto"], "netproto") if o.extra_level else (m["ipsetup"], "ipsetup")
            return Screen("sysconf", m["sysconf_title"], items(
                [first, *((label, None) for label in SYSCONF_OTHERS)]))
        if name == "netproto":
            return Screen("netproto", m["netproto_title"], items(
                [(m["ipsetup"], "ipsetup"), ("IPX Setup...", None),
                 ("Static Routes...", None)]), parent="sysconf")
        if name == "ipsetup":
            return self.ipsetup()
        if name == "confirm":
            return Screen("confirm", m["confirm_title"], [
                Element(10, 24, "Continue", target="save"), Element(10, 44, "Cancel",
                                                                    target="ipsetup")],
                [(6, 6, "Save the new IP settings to the router's configuration?"),
                 (7, 6, "They take effect when the router is restarted.")], selected=1,
                parent="ipsetup")
        if name == "utilities":
            return Screen("utilities", m["utilities_title"], items(
                [*((label, None) for label in UTILITIES_OTHERS[:3]),
                 (UTILITIES_OTHERS[3], None), (m["restart"], "restart")]))
        if name == "restart":
            return Screen("restart", m["utilities_title"], [
                Element(10, 24, "Continue", target="reboot"), Element(10, 44, "Cancel",
                                                                      target="utilities")],
                [(6, 6, "Are you sure you want to restart the Router?")], selected=1,
                parent="utilities")
        if name == "asked":
            return Screen("asked", "Restart Router", [
                Element(10, 24, "Restart", target="reboot"), Element(10, 44, "Cancel",
                                                                     target="ipsetup")],
                [(6, 6, "The new settings take effect when the router restarts."),
                 (7, 6, "Restart now?")], selected=1, parent="ipsetup")
        if name == "status":
            return self.status_screen()
        raise ValueError(name)

    def ipsetup(self) -> Screen:
        labels = self.opts.labels
        rows: list[tuple[str, str | None]] = [
            ("Ethernet A IP Address", None), ("Ethernet A Subnet Mask", None),
            (labels["address"], "address"), (labels["netmask"], "netmask"),
            (labels["gateway"], "gateway"), ("Primary Domain Name Server", None)]
        elements = [Element(4 + i, 10, label, "field", key, 44)
                    for i, (label, key) in enumerate(rows)]
        elements.append(Element(11, 10, "Static Routes..."))
        if self.opts.save_model == "item":
            elements.append(Element(12, 10, self.opts.menu["save"], target="confirm"))
        parent = "netproto" if self.opts.extra_level else "sysconf"
        return Screen("ipsetup", self.opts.menu["ipsetup_title"], elements, selected=2,
                      parent=parent)

    def status_screen(self) -> Screen:
        wan, labels = self.state.runs, self.opts.status_labels
        rows = [("Ethernet A IP Address", LAN_ADDRESS), (labels["address"], str(wan.address)),
                (labels["netmask"], str(wan.netmask)), (labels["gateway"], str(wan.gateway)),
                ("Uptime", f"{self.state.restarts} restarts")]
        return Screen("status", self.opts.menu["status_title"], [],
                      [(5 + i, 10, f"{label}:".ljust(34) + value)
                       for i, (label, value) in enumerate(rows)])

    def value(self, el: Element) -> str:
        if el.key is None:
            return {"Ethernet A IP Address": LAN_ADDRESS,
                    "Ethernet A Subnet Mask": LAN_MASK}.get(el.label, "0.0.0.0")
        return self.pending.get(el.key, self.state.saved.as_dict()[el.key])

    # --- drawing -----------------------------------------------------------------------

    def element_text(self, el: Element, highlighted: bool) -> str:
        on = REVERSE if highlighted else ""
        off = NORMAL if highlighted else ""
        if el.kind == "field":
            return (at(el.row, el.col) + f"{el.label}:" + at(el.row, el.value_col)
                    + " " * 16 + at(el.row, el.value_col) + on + self.value(el) + off)
        return at(el.row, el.col) + on + el.label + off

    async def draw(self, status: str = "") -> None:
        s, o = self.screen, self.opts
        out = ["\x1b[2J\x1b[H"]
        title_row = 1
        if o.banner:
            out += [at(0, 0), o.banner]
            title_row = 2
        out += [at(title_row, (80 - len(s.title)) // 2), s.title]
        out += [at(r, c) + t for r, c, t in s.text]
        out += [self.element_text(el, i == s.selected) for i, el in enumerate(s.elements)]
        if status:
            out.append(at(STATUS_ROW, 4) + status)
        if o.footer and s.elements:
            out += [at(FOOTER_ROW, (80 - len(FOOTER)) // 2), FOOTER]
        out.append(at(23, 0))
        await self.term.write("".join(out))

    async def status(self, text: str) -> None:
        await self.term.write(at(STATUS_ROW, 0) + "\x1b[K" + (at(STATUS_ROW, 4) + text
                                                               if text else "") + at(23, 0))

    async def move(self, step: int) -> None:
        s = self.screen
        if not s.elements:
            return
        new_index = s.selected + step
        if not self.opts.wrap and not 0 <= new_index < len(s.elements):
            return  # at the end of the menu the bar stays where it is
        old = s.elements[s.selected]
        s.selected = new_index % len(s.elements)
        new = s.elements[s.selected]
        await self.term.write(self.element_text(old, False) + self.element_text(new, True)
                              + at(23, 0))

    # --- dialogue ----------------------------------------------------------------------

    async def login(self) -> bool:
        return await login(self.term, self.state, LOGIN)

    async def idle_drop(self, point: Literal["login", "menu", "set", "save"]) -> None:
        if self.state.idle_drop(point):
            await self.term.write("\x1b[2J\x1b[H\r\nConsole idle timeout: session closed.\r\n")
            raise EOFError

    async def run(self) -> None:
        if not await self.login():
            return
        if self.opts.hang_at == "login":
            await self.term.hang()
        await self.idle_drop("login")
        await self.draw()
        while True:
            key = await self.term.key()
            if key == "":
                return
            if key in ("\n", "\x00"):
                continue
            if self.opts.hang_at == "menu":
                await self.term.hang()
            if self.asking_save:
                await self.answer_save(key)
            elif key in (DOWN, "\x1b[C"):
                await self.move(1)
            elif key in (UP, "\x1b[D"):
                await self.move(-1)
            elif key == ESC:
                await self.back()
            elif key == RETURN and not await self.enter():
                return

    async def back(self) -> None:
        s = self.screen
        if s.name == "main":
            return
        if s.name == "ipsetup" and self.pending:
            if self.opts.save_model == "escape":
                self.asking_save = True
                await self.term.write(at(STATUS_ROW, 0) + "\x1b[K" + at(STATUS_ROW, 4)
                                      + SAVE_PROMPT)
                return
            self.pending = {}  # Escape reverts what was not saved
        await self.go(s.parent, came_from=s.name)

    async def go(self, name: str, came_from: str | None = None, status: str = "") -> None:
        self.screen = self.build(name)
        if came_from is not None:  # back on the parent: the bar on the item we left by
            for i, el in enumerate(self.screen.elements):
                if el.target == came_from:
                    self.screen.selected = i
        await self.draw(status)

    async def answer_save(self, key: str) -> None:
        if key.lower() == "y":
            self.asking_save = False
            if await self.commit():
                await self.go("sysconf" if not self.opts.extra_level else "netproto",
                              came_from="ipsetup", status="Changes saved.")
        elif key.lower() == "n":
            self.asking_save = False
            self.pending = {}
            await self.go(self.screen.parent, came_from="ipsetup")
        elif key == ESC:  # stay on the screen, edits kept
            self.asking_save = False
            await self.status("")

    async def enter(self) -> bool:
        """Return on the highlighted element; False when the session ends."""
        s = self.screen
        if not s.elements:
            return True
        el = s.elements[s.selected]
        if el.kind == "field":
            await self.edit(el)
            return True
        if el.target == "save":
            if await self.commit():
                await self.go("asked" if self.opts.ask_restart else "ipsetup",
                              status="" if self.opts.ask_restart else "Changes saved.")
            return True
        if el.target == "reboot":
            await self.term.write("\x1b[2J\x1b[H\r\nRestarting...\r\n")
            if self.state.restart is not None:
                await self.state.restart()
            return False
        if el.target is None:
            await self.status("Not available on this console.")
            return True
        await self.go(el.target)
        return True

    async def edit(self, el: Element) -> None:
        await self.status("")
        await self.term.write(at(el.row, el.value_col) + " " * 16 + at(el.row, el.value_col))
        buf: list[str] = []
        while True:
            ch = await self.term.char()
            if ch in ("", ESC):
                await self.term.write(self.element_text(el, True) + at(23, 0))
                if ch == "":
                    raise EOFError
                return
            if ch == "\r":
                break
            if ch in ("\x7f", "\x08") and buf:
                buf.pop()
                await self.term.write("\x08 \x08")
            elif " " < ch < "\x7f":
                buf.append(ch)
                await self.term.write(ch)
        value = "".join(buf)
        self.state.received.append(f"{el.label} = {value}")
        await self.idle_drop("set")
        try:
            IPv4Address(value)
        except AddressValueError:
            await self.status(f"Invalid IP address: {value!r}")
        else:
            if el.key is None or el.key in self.opts.refuse:
                await self.status(f"Error: {el.label} cannot be set to {value} here.")
            else:
                self.pending[el.key] = value
                if self.opts.hang_at == "set":
                    await self.term.hang()
                if self.opts.save_model == "return":  # Return commits the field
                    await self.state.save(WanConfig.parse(
                        **{**self.state.saved.as_dict(), **self.pending}))
                    self.pending = {}
        await self.term.write(self.element_text(el, True) + at(23, 0))

    async def commit(self) -> bool:
        """Save the pending edits; False (and an error on screen) when it refuses."""
        if self.opts.hang_at == "save":
            await self.term.hang()
        await self.idle_drop("save")
        wan = WanConfig.parse(**{**self.state.saved.as_dict(), **self.pending})
        try:
            net = IPv4Network(f"{wan.address}/{wan.netmask}", strict=False)
        except ValueError:
            net = None
        if net is None or wan.gateway not in net or wan.gateway == wan.address:
            self.screen = self.ipsetup()
            await self.draw(f"Error: {self.opts.labels['gateway']} is not on the WAN subnet.")
            return False
        await self.state.save(wan)
        self.pending = {}
        return True
