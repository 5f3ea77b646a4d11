"""`netopia-menu`: the Netopia R-series VT100 menu console over telnet.

The screen is rendered with pyte and read by label (`menu_walk.MenuWalker`); the whole
dialogue comes from `dialogues/netopia_menu.toml` merged with user overrides.

Read: the status screen (`[status]`) shows what the router runs, the edit screen
(`[edit]`) what it has saved. Write: on the edit screen change only the fields whose saved
value differs, then save by the configured model (a save item and a confirm screen;
Escape answered by a Y/N question; or Return committing each field). Restart: its own
menu item and confirmation (`[restart]`), or the question some consoles ask after a
save. A refusal before the save leaves the saved config untouched (Escape reverts, the
Y/N question is answered "no", fields Return already committed are set back).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from . import dialogue
from .base import RouterReading, RouterSettings, WanConfig
from .errors import (
    RouterConnectError,
    RouterError,
    RouterRefused,
    RouterTimeout,
)
from .menu_walk import MenuWalker, menu_drawn, parked
from .parsers import parse_menu_wan
from .screen import ScreenDialogue, ScreenView, norm
from .skeleton import ApplySkeleton
from .telnet import TelnetSession

KEYS = ("address", "netmask", "gateway")


class MenuSession:
    """One logged-in console session and where on it we are."""

    def __init__(self, walker: MenuWalker) -> None:
        self.walk = walker
        self.on_edit = False       # the edit screen is shown
        self.asked_restart = False  # the console asked to restart after the save


class NetopiaMenuDriver(ApplySkeleton[MenuSession]):
    name = "netopia-menu"

    def __init__(self, settings: RouterSettings) -> None:
        super().__init__(settings)
        self.dialogue = d = dialogue.load("netopia_menu", settings.dialogue)
        self._edit_labels = {k: d.text("edit", "fields", k) for k in KEYS}
        self._status_labels = {k: d.text("status", "fields", k) for k in KEYS}
        self._errors = d.pattern("errors", "pattern")
        self._save_model = d.text("save", "model")
        self._restart_model = d.text("restart", "model")

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[MenuSession]:
        async with TelnetSession.to(self.settings, self._transcript) as session:
            walker = MenuWalker(ScreenDialogue(session), self.dialogue, self.settings)
            await walker.login()
            yield MenuSession(walker)

    def restarts(self) -> bool:
        return dialogue.restarts(self.dialogue)

    # --- read ----------------------------------------------------------------------------

    async def _to_edit(self, m: MenuSession) -> ScreenView:
        if m.on_edit:
            return m.walk.s.view()
        await m.walk.main()
        view = await m.walk.follow(self.dialogue.steps("edit", "path"),
                                   self.dialogue.text("screen", "footer"), self._edit_labels)
        m.on_edit = True
        return view

    async def _read(self, m: MenuSession) -> RouterReading:
        walk = m.walk
        await walk.main()
        m.on_edit = False
        status = await walk.follow(self.dialogue.steps("status", "path"),
                                   labels=self._status_labels)
        running = parse_menu_wan(status, self._status_labels, "status screen")
        view = await self._to_edit(m)
        saved = parse_menu_wan(view, self._edit_labels, "edit screen")
        return RouterReading(running, saved)

    # --- write ---------------------------------------------------------------------------

    async def _set_field(self, m: MenuSession, key: str, value: str) -> None:
        d, walk = self.dialogue, m.walk
        label = self._edit_labels[key]
        step = f"set {label!r}"
        view = await walk.select(label)
        accept = d.text("keys", "accept")
        # an error already on the status line (an earlier refusal) is not this one's
        shown = self._error_lines(view)
        walk.s.session.send(accept + value + accept, shown=f"<Return> {value} <Return>")

        def done(v: ScreenView) -> bool:
            if not parked(v):
                return False  # still drawing: the value, or the status line's whole error
            if self._error_lines(v) - shown:
                return True
            hl = v.highlight()
            return (hl is not None and hl.complete and norm(hl.label) == norm(label)
                    and hl.value == value)

        view = await walk.s.wait(step, done, check_now=False,
                                 expecting=f"{label} to show {value}")
        if self._error_lines(view) - shown:
            raise RouterRefused(step, f"the router refused {value}", walk.seen(view))

    def _error_lines(self, view: ScreenView) -> set[str]:
        return {line.strip() for line in view.lines if self._errors.search(line)}

    async def _write(self, m: MenuSession, current: RouterReading, target: WanConfig) -> None:
        await self._to_edit(m)
        saved = (current.saved or current.running).as_dict()
        changed: list[str] = []
        try:
            for key, value in target.as_dict().items():
                if saved[key] != value:
                    await self._set_field(m, key, value)
                    changed.append(key)
            await self._save(m)
        except RouterError as exc:
            if isinstance(exc, RouterConnectError | RouterTimeout) or exc.saved:
                raise  # nothing to undo on a dropped session; a saved change is reported
            await self._undo(m, changed, saved)
            raise

    async def _save(self, m: MenuSession) -> None:
        d, walk = self.dialogue, m.walk
        before = walk.s.view().lines
        if self._save_model == "item":
            await walk.select(d.text("save", "item"))
            walk.press(d.text("keys", "accept"))
            title = d.pattern("save", "confirm_title")
            await walk.s.wait("save", walk.ready(title), check_now=False,
                              expecting=f"confirm screen /{title.pattern}/",
                              give_up=walk.other_screen(title, before), quiet=walk.quiet)
            await walk.select(d.text("save", "confirm_item"))
            before = walk.s.view().lines
            walk.press(d.text("keys", "accept"))
        elif self._save_model == "escape":
            walk.press(d.text("keys", "cancel"))
            prompt = d.pattern("save", "prompt")
            await walk.s.wait("save", lambda v: v.contains(prompt) or v.contains(self._errors),
                              check_now=False, expecting=f"the question /{prompt.pattern}/")
            before = walk.s.view().lines
            walk.s.session.send(d.text("save", "answer"))
            m.on_edit = False
        else:
            return  # "return": each Return already committed its field
        asked = d.pattern("restart", "asked")
        view = await walk.s.wait("save", lambda v: v.lines != before and (
            (v.contains(self._errors) and parked(v)) or menu_drawn(v)), check_now=False,
            expecting="the screen after the save")
        if view.contains(self._errors):
            raise RouterRefused("save", "the router refused to save", walk.seen(view))
        m.asked_restart = view.contains(asked)
        m.on_edit = m.on_edit and not m.asked_restart

    async def _undo(self, m: MenuSession, changed: list[str], saved: dict[str, str]) -> None:
        """After a refusal: leave the saved config as it was."""
        d, walk = self.dialogue, m.walk
        with contextlib.suppress(RouterError):
            if self._save_model == "return":
                for key in changed:  # Return committed these: set them back
                    await self._set_field(m, key, saved[key])
                self._transcript.note("set the committed fields back")
            elif self._save_model == "escape":
                walk.press(d.text("keys", "cancel"))
                prompt = d.pattern("save", "prompt")
                await walk.s.wait("discard", lambda v: v.contains(prompt), check_now=False)
                walk.s.session.send(d.text("save", "discard"))
                self._transcript.note("left the screen without saving")
            else:
                walk.press(d.text("keys", "cancel"))  # Escape reverts what was not saved
                self._transcript.note("left the screen without saving")
            m.on_edit = False

    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        d = self.dialogue
        saved = (current.saved or current.running).as_dict()
        steps = [f"select {s.item!r}" + (" (if listed)" if s.optional else "")
                 for s in d.steps("edit", "path")]
        steps += [f"set {self._edit_labels[k]!r} = {v}" for k, v in target.as_dict().items()
                  if saved[k] != v]
        if self._save_model == "item":
            steps += [f"select {d.text('save', 'item')!r}",
                      f"confirm {d.text('save', 'confirm_item')!r}"]
        elif self._save_model == "escape":
            steps += [f"<Esc>, answer {d.text('save', 'answer')!r} to save"]
        else:
            steps += ["(Return commits each field: no save step)"]
        return steps

    # --- restart -------------------------------------------------------------------------

    async def _restart(self, m: MenuSession) -> None:
        d, walk = self.dialogue, m.walk
        if self._restart_model == "asked":
            if not m.asked_restart:
                self._transcript.note("the console did not ask to restart")
                return
            await walk.select(d.text("restart", "asked_item"))
            walk.press(d.text("keys", "accept"))
        else:
            await walk.main()
            m.on_edit = False
            await walk.follow(d.steps("restart", "path"))
            await walk.select(d.text("restart", "item"))
            walk.press(d.text("keys", "accept"))
            confirm = d.pattern("restart", "confirm")
            await walk.s.wait("restart", lambda v: v.contains(confirm) and menu_drawn(v),
                              check_now=False, expecting=f"the question /{confirm.pattern}/")
            await walk.select(d.text("restart", "confirm_item"))
            walk.press(d.text("keys", "accept"))
        try:
            await walk.s.wait("restart", lambda v: False, self.settings.restart_timeout,
                              check_now=False, expecting="the router to drop the session")
        except RouterConnectError:
            self._transcript.note("the router dropped the session to restart")
        except RouterTimeout as exc:
            raise RouterTimeout("restart", "saved, but the router did not restart within "
                                f"{self.settings.restart_timeout:g}s", exc.seen,
                                saved=True) from exc

    def _restart_plan(self) -> list[str]:
        d = self.dialogue
        if self._restart_model == "asked":
            return [f"restart when asked ({d.text('restart', 'asked_item')!r})"]
        return [*(f"select {s.item!r}" for s in d.steps("restart", "path")),
                f"select {d.text('restart', 'item')!r}",
                f"confirm {d.text('restart', 'confirm_item')!r}"]
