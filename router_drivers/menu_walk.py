"""Moving around a Netopia menu console: log in, find screens by title, select by label.

`MenuWalker` is shared by the `netopia-menu` driver and by `router explore`. It never
changes a field or saves: it presses Down, Return and Escape, and waits on the rendered
screen (`ScreenDialogue`). Every wait that can tell early that it will not succeed (a
screen with another title, a menu bar that stopped moving at the last item) fails at
once, naming what was expected and what was seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .base import RouterSettings
from .dialogue import Dialogue, PathStep
from .errors import RouterAuthError, RouterParseError
from .screen import GiveUp, Predicate, ScreenDialogue, ScreenView, moved_from, norm
from .transcript import MASK

KEY_NAMES = {"\r": "<Return>", "\x1b": "<Esc>", "\x1b[B": "<Down>", "\x1b[A": "<Up>",
             "\t": "<Tab>"}
# Escape presses that must bring any screen back to the Main Menu.
MAX_DEPTH = 8


class ItemMissing(RouterParseError):
    """A menu does not list the label asked for; `items` are the labels it does list."""

    def __init__(self, step: str, message: str, seen: str, items: list[str]) -> None:
        super().__init__(step, message, seen)
        self.items = items


def parked(view: ScreenView) -> bool:
    """The cursor is not right after text: consoles park it once a screen is drawn,
    while a half-drawn screen has it right after the last character written."""
    x, y = view.cursor
    return x == 0 or not view.lines[y][x - 1].strip()


def menu_drawn(view: ScreenView) -> bool:
    """A menu drawn whole: its highlight bar complete and the cursor parked. Escape and a
    save always lead to a menu; a screen without its bar yet is still being drawn."""
    return _bar(view) and parked(view)


def settled(view: ScreenView) -> bool:
    """Drawn whole: a menu with its bar complete, or a screen with no bar at all (a
    status screen), and the cursor parked."""
    hl = view.highlight()
    if hl is not None:
        return hl.complete and parked(view)
    return not [r for r in view.reverse if r[0] >= 3] and parked(view)


class MenuWalker:
    def __init__(self, s: ScreenDialogue, d: Dialogue, settings: RouterSettings) -> None:
        self.s = s
        self.d = d
        self.settings = settings
        self.main_title = d.pattern("screen", "main_title")
        self.quiet = d.number("screen", "quiet")

    def press(self, key: str) -> None:
        self.s.session.send(key, shown=KEY_NAMES.get(key, key))

    def seen(self, view: ScreenView) -> str:
        return self.s.session.transcript.mask(view.compact())

    def ready(self, title: re.Pattern[str], footer: str = "") -> Predicate:
        def pred(v: ScreenView) -> bool:
            return v.titled(title) and (not footer or v.contains(footer)) and settled(v)
        return pred

    def other_screen(self, title: re.Pattern[str], before: tuple[str, ...]) -> GiveUp:
        """give_up for a wait for `title`: the screen changed and went quiet untitled."""
        def give_up(v: ScreenView) -> str | None:
            if v.lines == before or not v.compact().strip():
                return None
            return (f"expected a screen titled /{title.pattern}/, the screen's title lines "
                    f"are {v.headings()}")
        return give_up

    async def login(self) -> ScreenView:
        d, s = self.d, self.s
        name_p, pass_p = d.text("login", "name_prompt"), d.text("login", "password_prompt")
        failed, locked = d.pattern("login", "failed"), d.pattern("login", "locked")
        main = self.ready(self.main_title)
        # the row each prompt was answered on: the prompt stays drawn there after we
        # answer, so only a prompt on another row is a new question
        answered: dict[str, int] = {}

        def asks(v: ScreenView, prompt: str) -> bool:
            return _prompt_waiting(v, prompt) and answered.get(prompt) != v.cursor[1]

        def give_up(v: ScreenView) -> str | None:
            if not v.compact().strip() or not settled(v):
                return None
            return (f"expected the Main Menu (a line matching /{self.main_title.pattern}/) "
                    f"or a login prompt ({name_p!r}, {pass_p!r}); the screen's title lines "
                    f"are {v.headings()}")

        while True:
            view = await s.wait("login", lambda v: (
                main(v) or v.contains(failed) or v.contains(locked)
                or asks(v, name_p) or asks(v, pass_p)),
                expecting=f"Main Menu /{self.main_title.pattern}/ or login prompt",
                give_up=give_up, quiet=max(self.quiet, 2.0))
            if main(view):
                return view
            if view.contains(locked) or view.contains(failed):
                what = "locked us out" if view.contains(locked) else "refused the login"
                raise RouterAuthError("login", f"the router {what}", self.seen(view))
            if asks(view, name_p):
                if name_p in answered:
                    raise RouterAuthError("login", "asked for the name again", self.seen(view))
                user = self.settings.username or d.text("login", "default_name")
                s.session.send(user + "\r")
                answered[name_p] = view.cursor[1]
            else:
                if pass_p in answered:
                    raise RouterAuthError("login", "asked for the password again",
                                          self.seen(view))
                if self.settings.password is None:
                    raise RouterAuthError("login", "the router asks for a password and none "
                                          "is configured (router.password_file)")
                s.session.send(self.settings.password.reveal() + "\r", shown=MASK)
                answered[pass_p] = view.cursor[1]

    async def items(self) -> list[str]:
        """The labels of the current menu, in bar order (the bar goes round it once)."""
        try:
            await self.select("\x00 no such item \x00")
        except ItemMissing as exc:
            return exc.items
        return []  # pragma: no cover - no item can have that label

    async def select(self, label: str) -> ScreenView:
        """Move the highlight bar onto `label` (menu item or field) with Down presses.

        On a menu that does not wrap, the bar stopping at the last item turns the search
        upwards. Raises `ItemMissing` (listing the labels seen, top to bottom) when the
        bar went round the menu, or stopped at both ends, without reaching `label`.
        """
        step = f"select {label!r}"
        s = self.s
        try:
            view = await s.wait(step, _bar, expecting="a menu with its highlight bar",
                                give_up=lambda v: "no highlight bar", quiet=self.quiet)
        except RouterParseError:
            view = s.view()  # a screen without a bar (a status screen) lists no items
        seen: dict[tuple[int, str], int] = {}  # (row, label) -> column
        keys = [self.d.text("keys", "down"), self.d.text("keys", "up")]
        for _ in range(int(self.d.number("screen", "max_items")) * 2):
            hl = view.highlight()
            if hl is None:
                break
            if norm(hl.label) == norm(label):
                return view
            here = (hl.row, hl.label.strip())
            if here in seen and keys[0] == self.d.text("keys", "down"):
                break  # the bar went round the whole menu
            seen[here] = hl.col
            self.press(keys[0])
            try:
                view = await s.wait(step, moved_from(hl.row, hl.label), check_now=False,
                                    expecting="the highlight bar to move",
                                    give_up=lambda v: "the bar stopped moving",
                                    quiet=self.quiet)
            except RouterParseError:
                view = s.view()
                if len(keys) == 1:
                    break  # stopped at both ends of a menu that does not wrap
                keys = keys[1:]  # the last item: search upwards from here
        items = [name for (_, name), _ in sorted(seen.items(), key=lambda kv: (
            kv[0][0], kv[1]))]
        raise ItemMissing(step, f"no item labelled {label!r} on the screen "
                          f"{view.headings()} (its items: {', '.join(items) or 'none'})",
                          self.seen(view), items)

    async def open(self, step: PathStep, footer: str = "",
                   labels: Mapping[str, str] | None = None) -> ScreenView | None:
        """Select the step's item and open it; None when an optional item is not there.

        With `labels` the screen counts as drawn only once each labelled field shows a
        value (a status screen has no highlight bar to tell that it is complete).
        """
        if step.optional and not _listed(self.s.view(), step.item):
            # not even drawn on the screen: no need to walk the bar round the menu
            self.s.session.transcript.note(f"optional {step.item!r} not on this screen")
            return None
        try:
            await self.select(step.item)
        except ItemMissing:
            if step.optional:
                self.s.session.transcript.note(f"optional {step.item!r} not on this screen")
                return None
            raise
        before = self.s.view().lines
        self.press(self.d.text("keys", "accept"))
        ready = self.ready(step.title, footer)
        wanted = list((labels or {}).values())
        other = self.other_screen(step.title, before)

        def drawn(v: ScreenView) -> bool:
            return ready(v) and all(v.field(label) for label in wanted)

        def give_up(v: ScreenView) -> str | None:
            if not ready(v):
                return other(v)
            missing = [label for label in wanted if not v.field(label)]
            return (f"the screen {v.headings()} has no field labelled "
                    f"{', '.join(map(repr, missing))} (fields there: "
                    f"{', '.join(v.fields()) or 'none'})")

        return await self.s.wait(
            f"open {step.item!r}", drawn, check_now=False,
            expecting=f"screen titled /{step.title.pattern}/", give_up=give_up,
            quiet=self.quiet)

    async def follow(self, steps: list[PathStep], footer: str = "",
                     labels: Mapping[str, str] | None = None) -> ScreenView:
        """From the Main Menu along `steps`; the last screen must show the footer and
        the labelled fields."""
        view = self.s.view()
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            opened = await self.open(step, footer if last else "", labels if last else None)
            view = opened if opened is not None else view
        return view

    async def back(self) -> ScreenView:
        """Escape once and wait for the screen it leads to."""
        before = self.s.view().lines
        self.press(self.d.text("keys", "cancel"))
        try:
            return await self.s.wait(
                "back", lambda v: v.lines != before and menu_drawn(v), check_now=False,
                expecting="the previous screen",
                give_up=lambda v: None if v.lines == before else "quiet", quiet=self.quiet)
        except RouterParseError:
            return self.s.view()  # changed, then quiet: a console that never parks

    async def main(self) -> ScreenView:
        """Escape back to the Main Menu."""
        main = self.ready(self.main_title)
        view = self.s.view()
        for _ in range(MAX_DEPTH):
            if main(view):
                return view
            view = await self.back()
        raise RouterParseError("back to the Main Menu", f"no screen titled "
                               f"/{self.main_title.pattern}/ after {MAX_DEPTH} Escapes",
                               self.seen(view))


def _listed(view: ScreenView, label: str) -> bool:
    """Some item drawn on the screen (items are separated by 2+ spaces) is `label`."""
    want = norm(label)
    return any(norm(part) == want for line in view.lines for part in re.split(r"\s{2,}", line)
               if part.strip())


def _bar(view: ScreenView) -> bool:
    hl = view.highlight()
    return hl is not None and hl.complete


def _prompt_waiting(view: ScreenView, prompt: str) -> bool:
    """The cursor sits right after `prompt`: the console waits for that input."""
    x, y = view.cursor
    before = view.lines[y][:x].rstrip().lower()
    return bool(before) and before.endswith(prompt.strip().lower())
