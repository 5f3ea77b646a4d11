"""`router explore`: read-only discovery of a console nobody has mapped.

Menu console: walk the menu tree from the Main Menu (Return into items ending in "...",
Escape back). Nothing is ever edited, and no item whose label matches the deny list
(save, restart, reset, factory, upgrade, delete, clear, ...) is ever selected. Every
screen is recorded (masked). From the map it finds the screen whose editable fields look
like the WAN address, netmask and gateway, the screen that shows the same values without
letting them be edited (what the router runs), a save item and a restart item, and
proposes the `[router.dialogue]` tables that drive that unit.

CLI: only read-only commands (`help`, `?`, `show`, `netstat -i`, `netstat -r`); it
reports which keywords of the configured templates the firmware's help lists and whether
the read patterns match what the router printed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address
from typing import Any

from .base import RouterSettings
from .errors import RouterError, RouterParseError
from .menu_walk import MenuWalker, settled
from .screen import ScreenView, norm
from .telnet import TextDialogue

DEFAULT_DENY = (r"(?i)\b(save|restart|reboot|reset|factory|defaults?|upgrade|update|delete|"
                r"clear|erase|disconnect|format|load|tftp|x-?modem|apply|commit|install)\b")
MAX_DEPTH = 4
MAX_SCREENS = 60
# labels that look like the WAN values, and labels that are something else
WAN_HINT = re.compile(r"(?i)\b(wan|ethernet\s*b|internet|external|public)\b")
NOT_WAN = re.compile(r"(?i)\b(ethernet\s*a|lan|dns|name server|domain|dhcp|private|remote)\b")
LOOKS = {"address": re.compile(r"(?i)\baddress\b|\bip\b"),
         "netmask": re.compile(r"(?i)\bmask\b|\bnetmask\b"),
         "gateway": re.compile(r"(?i)\bgateway\b|\brouter\b")}


@dataclass
class ScreenRecord:
    path: tuple[str, ...]      # the items selected from the Main Menu to reach it
    title: str
    lines: list[str]           # the screen as rendered, secrets masked
    items: list[str]           # what the highlight bar visits (menu items and fields)
    fields: dict[str, str]     # every "Label: value" on it (normalised label -> value)
    editable: set[str] = field(default_factory=set)  # normalised labels the bar visits
    skipped: list[str] = field(default_factory=list)  # denied or non-"..." items


@dataclass
class Exploration:
    """What `explore_*` found: a proposal, a screen map or report, notes, the transcript."""

    proposal: dict[str, Any]
    report: str
    notes: list[str]
    transcript: str


def _changed_from(before: tuple[str, ...]) -> Callable[[ScreenView], bool]:
    return lambda v: v.lines != before and settled(v)


def _is_ip(value: str) -> bool:
    try:
        IPv4Address(value)
    except AddressValueError:
        return False
    return True


def _title_pattern(text: str) -> str:
    return "(?i)^" + re.escape(text.strip()).replace("\\ ", " ") + "$"


class MenuExplorer:
    def __init__(self, settings: RouterSettings, deny: list[str]) -> None:
        self.settings = settings
        self.deny = [re.compile(p) for p in [DEFAULT_DENY, *deny]]
        from .netopia_menu import NetopiaMenuDriver  # its login, on its transcript

        self.driver = NetopiaMenuDriver(settings)
        self.d = self.driver.dialogue
        self.screens: list[ScreenRecord] = []
        self.notes: list[str] = []

    def denied(self, label: str) -> bool:
        return any(p.search(label) for p in self.deny)

    async def run(self) -> Exploration:
        async with self.driver.session() as session:
            await self._visit(session.walk, ())
        return self._conclude()

    async def _visit(self, walk: MenuWalker, path: tuple[str, ...]) -> None:
        items = await walk.items()
        view = walk.s.view()
        fields = view.fields()
        record = ScreenRecord(path, "", [self.driver.mask(line.rstrip())
                                          for line in view.lines if line.strip()],
                              items, {k: self.driver.mask(v) for k, v in fields.items()},
                              {norm(i) for i in items if norm(i) in fields})
        self.screens.append(record)
        if len(path) >= MAX_DEPTH:
            return
        for item in items:
            if len(self.screens) >= MAX_SCREENS:
                self.notes.append(f"stopped after {MAX_SCREENS} screens")
                return
            if norm(item) in record.editable:
                continue  # a field: never edited, never entered
            if not item.rstrip().endswith("...") or self.denied(item):
                record.skipped.append(item)
                continue
            await walk.select(item)
            before = walk.s.view().lines
            walk.press(self.d.text("keys", "accept"))
            # quiet without parking the cursor: take the screen as it is
            with contextlib.suppress(RouterParseError):
                await walk.s.wait(f"open {item!r}", _changed_from(before), check_now=False,
                                  expecting="the screen it opens",
                                  give_up=lambda v: "quiet", quiet=walk.quiet)
            opened = walk.s.view()
            if opened.headings(2) == view.headings(2):
                record.skipped.append(item)  # no new screen (a message on the status line)
                continue
            await self._visit(walk, (*path, item))
            await self._back_to(walk, view, item)

    async def _back_to(self, walk: MenuWalker, parent: ScreenView, item: str) -> None:
        """Escape, then wait for the parent screen's heading lines, drawn whole."""
        headings = parent.headings(2)
        walk.press(self.d.text("keys", "cancel"))
        await walk.s.wait(f"back from {item!r}", lambda v: v.headings(2) == headings
                          and settled(v), check_now=False,
                          expecting=f"the screen {headings} again")

    # --- conclusions -----------------------------------------------------------------

    def _titles(self) -> None:
        """A screen's title: its first line that is not on every screen (a banner)."""
        firsts = [r.lines[:3] for r in self.screens if r.lines]
        common = set(firsts[0]).intersection(*map(set, firsts[1:])) if len(firsts) > 1 else set()
        if common:
            self.notes.append(f"banner on every screen: {sorted(common)}")
        for r in self.screens:
            r.title = next((line.strip() for line in r.lines if line not in common), "")

    def _wan_labels(self, r: ScreenRecord, editable: bool) -> dict[str, str] | None:
        """The labels on `r` that look like the WAN address, netmask and gateway."""
        found: dict[str, str] = {}
        for key, looks in LOOKS.items():
            best: tuple[int, str] | None = None
            for label, value in r.fields.items():
                if (editable and label not in r.editable) or not _is_ip(value):
                    continue
                if not looks.search(label) or NOT_WAN.search(label) or label in found.values():
                    continue
                if key == "address" and (LOOKS["netmask"].search(label)
                                         or LOOKS["gateway"].search(label)):
                    continue
                score = 2 if WAN_HINT.search(label) else 1
                if best is None or score > best[0]:
                    best = (score, label)
            if best is None:
                return None
            found[key] = best[1]
        return found

    def _original(self, r: ScreenRecord, normalised: str) -> str:
        """The label as the screen shows it (fields are keyed normalised)."""
        for item in r.items:
            if norm(item) == normalised:
                return item.strip().rstrip(":")
        for line in r.lines:
            for m in re.finditer(r"([A-Za-z(][^:]*?):[ \t]+\S+", line):
                if norm(m[1]) == normalised:
                    return m[1].strip()
        return normalised

    def _path(self, r: ScreenRecord) -> list[dict[str, Any]]:
        by_path = {s.path: s for s in self.screens}
        return [{"item": item, "title": _title_pattern(by_path[r.path[:i + 1]].title)}
                for i, item in enumerate(r.path)]

    def _conclude(self) -> Exploration:
        self._titles()
        proposal: dict[str, Any] = {}
        main = self.screens[0]
        if not re.search(self.d.text("screen", "main_title"), main.title):
            proposal["screen"] = {"main_title": _title_pattern(main.title)}
        edits = [(r, labels) for r in self.screens if r.path
                 and (labels := self._wan_labels(r, editable=True))]
        if not edits:
            self.notes.append("no screen with editable fields that look like the WAN "
                              "address, netmask and gateway: see the screen map")
            return self._done(proposal)
        edit, labels = edits[0]
        values = {k: edit.fields[v] for k, v in labels.items()}
        proposal["edit"] = {"path": self._path(edit), "fields": {
            k: self._original(edit, v) for k, v in labels.items()}}
        status = self._status(edit, values)
        if status is not None:
            record, slabels = status
            proposal["status"] = {"path": self._path(record), "fields": {
                k: self._original(record, v) for k, v in slabels.items()}}
        else:
            self.notes.append("no read-only screen shows the WAN values: the read-back "
                              "after a restart cannot be told from the edit screen")
        saves = [i for i in edit.skipped if re.search(r"(?i)\bsave\b", i)]
        if saves:
            label = saves[0]
            proposal["save"] = {"model": "item", "item": label,
                                "confirm_title": _title_pattern(label.rstrip(". "))}
        else:
            self.notes.append("no save item on the edit screen: the firmware saves on "
                              "Escape (save.model = \"escape\") or on Return (\"return\"); "
                              "try `router apply backup --dry-run`, then one apply by hand")
        restarts = [(r, i) for r in self.screens for i in r.skipped
                    if re.search(r"(?i)\b(restart|reboot)\b", i)]
        if restarts:
            record, item = restarts[0]
            proposal["restart"] = {"model": "menu", "item": item,
                                   "path": self._path(record)}
        else:
            self.notes.append("no restart item found: if a save runs at once, set "
                              "restart.model = \"none\"")
        return self._done(proposal)

    def _status(self, edit: ScreenRecord, values: dict[str, str]
                ) -> tuple[ScreenRecord, dict[str, str]] | None:
        for r in self.screens:
            if r is edit or not r.path:
                continue
            labels: dict[str, str] = {}
            for key, value in values.items():
                matches = [label for label, v in r.fields.items() if v == value
                           and label not in r.editable and not NOT_WAN.search(label)]
                if matches:
                    labels[key] = sorted(matches, key=lambda m: not WAN_HINT.search(m))[0]
            if len(labels) == 3 and len(set(labels.values())) == 3:
                return r, labels
        return None

    def _done(self, proposal: dict[str, Any]) -> Exploration:
        out: list[str] = []
        for r in self.screens:
            out.append(f"== {' > '.join(('Main Menu', *r.path))}  (title {r.title!r})")
            out += [f"   | {line}" for line in r.lines]
            if r.items:
                out.append(f"   items: {', '.join(r.items)}")
            if r.skipped:
                out.append(f"   not entered (denied, an action, or no screen of its own): "
                           f"{', '.join(r.skipped)}")
        return Exploration(proposal, "\n".join(out) + "\n", self.notes,
                           self.driver.transcript())


async def explore_menu(settings: RouterSettings, deny: list[str] | None = None) -> Exploration:
    return await MenuExplorer(settings, deny or []).run()


# --- the CLI -----------------------------------------------------------------------------

READ_ONLY = ("help", "?", "show", "netstat -i", "netstat -r")


async def explore_cli(settings: RouterSettings) -> Exploration:
    from .netopia_cli import NetopiaCliDriver  # its login and command handling

    driver = NetopiaCliDriver(settings)
    d = driver.dialogue
    outputs: dict[str, str] = {}
    async with driver._session() as t:
        for command in READ_ONLY:
            with contextlib.suppress(RouterError):
                outputs[command] = await _run(driver, t, command)
    listing = (outputs.get("help", "") + outputs.get("?", "")).lower()
    notes: list[str] = []
    for key, value in d.data["commands"].items():
        for template in value if isinstance(value, list) else [value]:
            if not template:
                continue
            word = template.split()[0].lower()
            known = re.search(rf"\b{re.escape(word)}\b", listing) is not None
            notes.append(f"commands.{key} {template!r}: {word!r} "
                         + ("is listed by help" if known else "is NOT listed by the shell's "
                            "help (a config-mode command? check with `configure`, `help`)"))
    for key, command in (("interface", "netstat -i"), ("default_route", "netstat -r")):
        ok = d.pattern("parse", key).search(outputs.get(command, "")) is not None
        notes.append(f"parse.{key}: " + (f"matches the output of {command!r}" if ok else
                                         f"does NOT match the output of {command!r}"))
    report = "".join(f"== {c}\n{driver.mask(o)}\n" for c, o in outputs.items())
    return Exploration({}, report, notes, driver.transcript())


async def _run(driver: Any, t: TextDialogue, command: str) -> str:
    t.session.send(command + "\r")
    _, text = await t.expect(command, {"prompt": driver.dialogue.pattern("prompts", "shell")})
    return str(text)
