"""The emulated Netopia R-series VT100 menu console (R9100 style).

Screens are drawn with cursor addressing; the highlight bar is reverse video; Down/Up
move it, Return selects an item or edits a field, Escape goes back and reverts unsaved
edits. Field edits stay pending until "Save Changes..." is confirmed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network
from typing import Literal

from ..base import WanConfig
from .state import RouterState
from .terminal import Terminal

FOOTER = "Return/Enter accepts * Tab toggles * ESC cancels"
STATUS_ROW, FOOTER_ROW = 20, 22
DOWN, UP, ESC, RETURN = "\x1b[B", "\x1b[A", "\x1b", "\r"
REVERSE, NORMAL = "\x1b[7m", "\x1b[0m"


def at(row: int, col: int) -> str:
    return f"\x1b[{row + 1};{col + 1}H"


@dataclass
class Element:
    row: int
    col: int
    label: str
    kind: Literal["item", "field"] = "item"
    key: str | None = None      # field: which WAN value it edits
    value_col: int = 0


@dataclass
class Screen:
    name: str
    title: str
    elements: list[Element]
    text: list[tuple[int, int, str]]
    selected: int = 0


MAIN_ITEMS = ["Easy Setup...", "WAN Configuration...", "System Configuration...",
              "Utilities & Diagnostics...", "Statistics & Logs...", "Quick Menus...",
              "Quick View..."]
SYSCONF_ITEMS = ["IP Setup...", "Filter Sets...", "Network Address Translation (NAT)...",
                 "Date and Time...", "Console Configuration...", "Security..."]


class MenuConsole:
    def __init__(self, state: RouterState, term: Terminal) -> None:
        self.state = state
        self.opts = state.options
        self.term = term
        self.pending: dict[str, str] = {}
        self.screen = self.main()

    # --- screens -----------------------------------------------------------------------

    def main(self) -> Screen:
        elements = [Element(4 + i % 4, 10 + 36 * (i // 4), label)
                    for i, label in enumerate(MAIN_ITEMS)]
        return Screen("main", "Netopia R9100 Main Menu", elements, [])

    def sysconf(self) -> Screen:
        return Screen("sysconf", "System Configuration",
                      [Element(4 + i, 20, label) for i, label in enumerate(SYSCONF_ITEMS)], [])

    def ipsetup(self) -> Screen:
        labels = self.opts.labels
        rows: list[tuple[str, str | None]] = [
            ("Ethernet A IP Address", None), ("Ethernet A Subnet Mask", None),
            (labels["address"], "address"), (labels["netmask"], "netmask"),
            (labels["gateway"], "gateway"), ("Primary Domain Name Server", None)]
        elements = [Element(4 + i, 10, label, "field", key, 44)
                    for i, (label, key) in enumerate(rows)]
        elements += [Element(11, 10, "Static Routes..."), Element(12, 10, "Save Changes...")]
        return Screen("ipsetup", "IP Setup", elements, [], selected=2)

    def confirm(self) -> Screen:
        return Screen("confirm", "Save changes", [Element(10, 24, "Continue"),
                                                  Element(10, 44, "Cancel")],
                      [(6, 6, "Save the new IP settings to the router's configuration"),
                       (7, 6, "and make them take effect?")], selected=1)

    def restart_screen(self) -> Screen:
        return Screen("restart", "Restart Router", [Element(10, 24, "Restart"),
                                                    Element(10, 44, "Cancel")],
                      [(6, 6, "The new settings take effect when the router restarts."),
                       (7, 6, "Restart now?")], selected=1)

    def value(self, el: Element) -> str:
        if el.key is None:
            return {"Ethernet A IP Address": "192.168.1.1",
                    "Ethernet A Subnet Mask": "255.255.255.0"}.get(el.label, "0.0.0.0")
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
        s = self.screen
        out = ["\x1b[2J\x1b[H", at(1, (80 - len(s.title)) // 2), s.title]
        out += [at(r, c) + t for r, c, t in s.text]
        out += [self.element_text(el, i == s.selected) for i, el in enumerate(s.elements)]
        if status:
            out.append(at(STATUS_ROW, 4) + status)
        out += [at(FOOTER_ROW, (80 - len(FOOTER)) // 2), FOOTER, at(23, 0)]
        await self.term.write("".join(out))

    async def status(self, text: str) -> None:
        await self.term.write(at(STATUS_ROW, 0) + "\x1b[K" + (at(STATUS_ROW, 4) + text
                                                               if text else "") + at(23, 0))

    async def move(self, step: int) -> None:
        s = self.screen
        old = s.elements[s.selected]
        s.selected = (s.selected + step) % len(s.elements)
        new = s.elements[s.selected]
        await self.term.write(self.element_text(old, False) + self.element_text(new, True)
                              + at(23, 0))

    # --- dialogue ----------------------------------------------------------------------

    async def login(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self.state.locked_until:
            await self.term.write("\x1b[2J\x1b[H\r\nToo many failed logins: locked out.\r\n")
            return False
        if self.opts.password is None and self.opts.username is None:
            return True
        await self.term.write("\x1b[2J\x1b[H\r\nNetopia R9100 (dslfailover emulator)\r\n\r\n")
        while True:
            name = None
            if self.opts.username is not None:
                await self.term.write("Enter a Name: ")
                name = await self.term.line()
                if name is None:
                    return False
            await self.term.write("Enter a Password: ")
            password = await self.term.line(echo=False)
            if password is None:
                return False
            await self.term.write("\r\n")
            if name == self.opts.username and password == (self.opts.password or ""):
                self.state.failed_logins = 0
                return True
            self.state.failed_logins += 1
            await self.term.write("Invalid name or password.\r\n")
            if self.state.failed_logins >= self.opts.max_tries:
                self.state.locked_until = loop.time() + self.opts.lockout
                await self.term.write("Too many failed logins: locked out.\r\n")
                return False

    async def run(self) -> None:
        if not await self.login():
            return
        if self.opts.hang_at == "login":
            await self.term.hang()
        await self.draw()
        while True:
            key = await self.term.key()
            if key == "":
                return
            if key in ("\n", "\x00"):
                continue
            if self.opts.hang_at == "menu":
                await self.term.hang()
            if key in (DOWN, "\x1b[C"):
                await self.move(1)
            elif key in (UP, "\x1b[D"):
                await self.move(-1)
            elif key == ESC:
                await self.back()
            elif key == RETURN and not await self.enter():
                return

    async def back(self) -> None:
        name = self.screen.name
        if name == "ipsetup":
            self.pending = {}  # Escape reverts what was not saved
            self.screen = self.sysconf()
        elif name == "sysconf":
            self.screen = self.main()
            self.screen.selected = MAIN_ITEMS.index("System Configuration...")
        elif name in ("confirm", "restart"):
            self.screen = self.ipsetup()
        await self.draw()

    async def enter(self) -> bool:
        """Return on the highlighted element; False when the session ends."""
        s = self.screen
        el = s.elements[s.selected]
        if el.kind == "field":
            await self.edit(el)
            return True
        if s.name == "main" and el.label == "System Configuration...":
            self.screen = self.sysconf()
        elif s.name == "sysconf" and el.label == "IP Setup...":
            self.screen = self.ipsetup()
        elif s.name == "ipsetup" and el.label == "Save Changes...":
            self.screen = self.confirm()
        elif s.name == "confirm" and el.label == "Continue":
            return await self.save()
        elif s.name == "restart" and el.label == "Restart":
            await self.term.write("\x1b[2J\x1b[H\r\nRestarting...\r\n")
            if self.state.restart is not None:
                await self.state.restart()
            return False
        elif el.label == "Cancel":
            self.screen = self.ipsetup()
        else:
            await self.status("Not available on this console.")
            return True
        await self.draw()
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
        await self.term.write(self.element_text(el, True) + at(23, 0))

    async def save(self) -> bool:
        if self.opts.hang_at == "save":
            await self.term.hang()
        wan = WanConfig.parse(**{**self.state.saved.as_dict(), **self.pending})
        self.screen = self.ipsetup()
        self.screen.selected = len(self.screen.elements) - 1
        try:
            net = IPv4Network(f"{wan.address}/{wan.netmask}", strict=False)
        except ValueError:
            net = None
        if net is None or wan.gateway not in net or wan.gateway == wan.address:
            await self.draw(f"Error: {self.opts.labels['gateway']} is not on the WAN subnet.")
            return True
        await self.state.save(wan)
        self.pending = {}
        if self.opts.restart_delay is not None:
            self.screen = self.restart_screen()
            await self.draw()
        else:
            await self.draw("Changes saved.")
        return True
