"""`netopia-menu`: the Netopia R-series VT100 menu console over telnet.

The screen is rendered with pyte and read by label: menu items are selected by pressing
Down until the highlight bar sits on the wanted label, fields are found by their label.
The dialogue (menu path, labels, save and restart prompts, keys) comes from
`dialogues/netopia_menu.toml` merged with user overrides.

Apply: log in, walk the menu path, change only the fields that differ, select the save
item and confirm; if the console asks to restart, restart and wait for it to come back
(within `restart_timeout`); then read back in a fresh session and compare. Fields are
only committed by the save: a refusal, a timeout or a surprise before it leaves the
saved configuration untouched (Escape reverts, a dropped session discards).
"""

from __future__ import annotations

import asyncio
import logging

from . import dialogue
from .base import RouterSettings, WanConfig
from .errors import (
    RouterAuthError,
    RouterConnectError,
    RouterError,
    RouterMismatch,
    RouterParseError,
    RouterRefused,
    RouterTimeout,
)
from .parsers import parse_menu_wan
from .screen import Predicate, ScreenDialogue, ScreenView, moved_from, norm
from .telnet import TelnetSession
from .transcript import MASK, Masker, Transcript

log = logging.getLogger(__name__)

# Pause between connection attempts while the router restarts (it refuses or drops us).
RECONNECT_PAUSE = 0.5
KEY_NAMES = {"\r": "<Return>", "\x1b": "<Esc>", "\x1b[B": "<Down>", "\x1b[A": "<Up>",
             "\t": "<Tab>"}


def _keys(text: str) -> str:
    return KEY_NAMES.get(text, text)


class NetopiaMenuDriver:
    name = "netopia-menu"

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.dialogue = dialogue.load("netopia_menu", settings.dialogue)
        self._transcript = Transcript(Masker([settings.password]))
        d = self.dialogue
        self._labels = {k: d.text("fields", k) for k in ("address", "netmask", "gateway")}
        self._footer = d.text("menu", "footer")
        self._errors = d.pattern("errors", "pattern")

    def transcript(self) -> str:
        return self._transcript.text()

    def _session(self) -> TelnetSession:
        s = self.settings
        return TelnetSession(s.host, s.port, connect_timeout=s.connect_timeout,
                             step_timeout=s.step_timeout, transcript=self._transcript)

    # --- steps -------------------------------------------------------------------------

    def _ready(self, title: str) -> Predicate:
        footer = self._footer

        def pred(v: ScreenView) -> bool:
            hl = v.highlight()
            return (norm(title) in norm(v.title()) and v.contains(footer)
                    and hl is not None and hl.complete)
        return pred

    async def _login(self, s: ScreenDialogue) -> ScreenView:
        d = self.dialogue
        name_p, pass_p = d.text("login", "name_prompt"), d.text("login", "password_prompt")
        failed, locked = d.pattern("login", "failed"), d.pattern("login", "locked")
        main = self._ready(d.text("menu", "main_title"))
        # the row each prompt was answered on: the prompt stays drawn there after we
        # answer, so only a prompt on another row is a new question
        answered: dict[str, int] = {}

        def asks(v: ScreenView, prompt: str) -> bool:
            return _prompt_waiting(v, prompt) and answered.get(prompt) != v.cursor[1]

        while True:
            view = await s.wait("login", lambda v: (
                main(v) or v.contains(failed) or v.contains(locked)
                or asks(v, name_p) or asks(v, pass_p)))
            if main(view):
                return view
            if view.contains(locked) or view.contains(failed):
                what = "locked us out" if view.contains(locked) else "refused the login"
                raise RouterAuthError("login", f"the router {what}", self._seen(view))
            if asks(view, name_p):
                if name_p in answered:
                    raise RouterAuthError("login", "asked for the name again", self._seen(view))
                user = self.settings.username or d.text("login", "default_name")
                s.session.send(user + "\r")
                answered[name_p] = view.cursor[1]
            else:
                if pass_p in answered:
                    raise RouterAuthError("login", "asked for the password again",
                                          self._seen(view))
                if self.settings.password is None:
                    raise RouterAuthError("login", "the router asks for a password and none "
                                          "is configured (router.password_file)")
                s.session.send(self.settings.password.reveal() + "\r", shown=MASK)
                answered[pass_p] = view.cursor[1]

    def _seen(self, view: ScreenView) -> str:
        """A screen for an error message: its non-empty lines, secrets masked."""
        return self._transcript.mask(view.compact())

    def _press(self, s: ScreenDialogue, key: str) -> None:
        s.session.send(key, shown=_keys(key))

    async def _select(self, s: ScreenDialogue, label: str) -> ScreenView:
        """Move the highlight bar onto `label` (menu item or field) with Down presses."""
        d = self.dialogue
        step = f"select {label!r}"
        view = await s.wait(step, _settled)
        seen: list[str] = []
        visited: set[tuple[int, str]] = set()
        for _ in range(int(d.number("menu", "max_items"))):
            hl = view.highlight()
            if hl is None:  # cannot happen: every wait here ends on a settled bar
                raise RouterParseError(step, "no highlighted item", self._seen(view))
            if norm(hl.label) == norm(label):
                return view
            if (hl.row, norm(hl.label)) in visited:
                break  # the bar went round the whole screen
            visited.add((hl.row, norm(hl.label)))
            seen.append(norm(hl.label))
            self._press(s, d.text("keys", "down"))
            view = await s.wait(step, moved_from(hl.row, hl.label), check_now=False)
        raise RouterParseError(step, f"no item labelled {label!r} on screen {view.title()!r} "
                               f"(items seen: {', '.join(seen)})", self._seen(view))

    async def _open(self, s: ScreenDialogue, label: str, title: str) -> ScreenView:
        await self._select(s, label)
        self._press(s, self.dialogue.text("keys", "accept"))
        return await s.wait(f"open {label!r}", self._ready(title), check_now=False)

    async def _to_settings(self, s: ScreenDialogue) -> ScreenView:
        d = self.dialogue
        path = d.texts("menu", "path")
        view = s.view()
        for i, item in enumerate(path):
            title = d.text("menu", "screen_title") if i == len(path) - 1 else item
            view = await self._open(s, item, title)
        return view

    async def _set_field(self, s: ScreenDialogue, key: str, value: str) -> None:
        d = self.dialogue
        label = self._labels[key]
        step = f"set {label!r}"
        await self._select(s, label)
        accept = d.text("keys", "accept")
        s.session.send(accept + value + accept, shown=f"<Return> {value} <Return>")

        def done(v: ScreenView) -> bool:
            hl = v.highlight()
            if hl is None or not hl.complete or norm(hl.label) != norm(label):
                return False
            return hl.value == value or v.contains(self._errors)

        view = await s.wait(step, done, check_now=False)
        if view.contains(self._errors):
            raise RouterRefused(step, f"the router refused {value}", self._seen(view))

    async def _save(self, s: ScreenDialogue) -> bool:
        """Save and confirm; True when the router then asked for (and began) a restart."""
        d = self.dialogue
        await self._open(s, d.text("save", "item"), d.text("save", "confirm_title"))
        await self._select(s, d.text("save", "confirm_item"))
        self._press(s, d.text("keys", "accept"))
        saved, restart = d.pattern("save", "saved"), d.pattern("save", "restart_prompt")
        view = await s.wait("save", lambda v: (
            v.contains(self._errors) or v.contains(saved)
            or (v.contains(restart) and _settled(v))), check_now=False)
        if view.contains(self._errors):
            raise RouterRefused("save", "the router refused to save", self._seen(view))
        if view.contains(saved):
            self._transcript.note("saved")
            return False
        self._transcript.note("saved; the router asks to restart")
        await self._select(s, d.text("save", "restart_item"))
        self._press(s, d.text("keys", "accept"))
        try:
            await s.wait("restart", lambda v: False, self.settings.restart_timeout,
                         check_now=False)
        except RouterConnectError:
            self._transcript.note("the router dropped the session to restart")
        except RouterTimeout as exc:
            raise RouterTimeout("restart", "saved, but the router did not restart within "
                                f"{self.settings.restart_timeout}s", exc.seen,
                                saved=True) from exc
        return True

    # --- the interface -----------------------------------------------------------------

    async def _read_session(self) -> WanConfig:
        async with self._session() as session:
            s = ScreenDialogue(session)
            await self._login(s)
            view = await self._to_settings(s)
            wan = parse_menu_wan(view, self._labels)
        self._transcript.note(f"read: {wan}")
        return wan

    async def read_wan(self) -> WanConfig:
        self._transcript = Transcript(self._transcript.mask)
        return await self._read_session()

    async def _read_after_restart(self) -> WanConfig:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.restart_timeout
        last: RouterError | None = None
        while loop.time() < deadline:
            try:
                return await self._read_session()
            except (RouterConnectError, RouterTimeout) as exc:
                last = exc
                await asyncio.sleep(RECONNECT_PAUSE)
        raise RouterTimeout("reconnect after restart", "the router did not come back within "
                            f"{self.settings.restart_timeout}s ({last.message if last else ''})",
                            last.seen if last else "", saved=True)

    def plan(self, current: WanConfig, target: WanConfig) -> list[str]:
        """What `apply_wan(target)` would do, for `--dry-run`; nothing is sent."""
        if current == target:
            return []
        d = self.dialogue
        steps = [f"select {item!r}" for item in d.texts("menu", "path")]
        steps += [f"set {self._labels[k]!r} = {v}" for k, v in target.as_dict().items()
                  if current.as_dict()[k] != v]
        steps += [f"select {d.text('save', 'item')!r}",
                  f"confirm {d.text('save', 'confirm_item')!r}",
                  f"restart if asked ({d.text('save', 'restart_item')!r})"]
        return steps

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        self._transcript = Transcript(self._transcript.mask)
        async with self._session() as session:
            s = ScreenDialogue(session)
            await self._login(s)
            view = await self._to_settings(s)
            current = parse_menu_wan(view, self._labels)
            if current == target:
                self._transcript.note(f"already at {target}: nothing changed, nothing saved")
                return current
            self._transcript.note(f"changing {current} -> {target}")
            try:
                for key, value in target.as_dict().items():
                    if current.as_dict()[key] != value:
                        await self._set_field(s, key, value)
            except RouterRefused:
                # Escape leaves the screen and reverts what was not saved
                self._press(s, self.dialogue.text("keys", "cancel"))
                raise
            restarted = await self._save(s)
        log.info("router %s: saved WAN %s; reading back", self.name, target)
        back = await (self._read_after_restart() if restarted else self._read_session())
        if back != target:
            raise RouterMismatch("read back", f"asked for {target}, the router reports {back}",
                                 saved=True)
        return back


def _prompt_waiting(view: ScreenView, prompt: str) -> bool:
    """The cursor sits right after `prompt`: the console waits for that input."""
    x, y = view.cursor
    before = view.lines[y][:x].rstrip().lower()
    return bool(before) and before.endswith(prompt.strip().lower())


def _settled(view: ScreenView) -> bool:
    hl = view.highlight()
    return hl is not None and hl.complete
