"""`netopia-cli`: the Netopia SOC OS 7.x text CLI over telnet.

Login, `configure`, one `set` per value, `save` only when every `set` was accepted,
`exit`; then a fresh session reads back with `netstat -i` and `netstat -r`. All commands,
prompts and patterns come from `dialogues/netopia_cli.toml` merged with user overrides.
"""

from __future__ import annotations

import contextlib
import logging

from . import dialogue
from .base import RouterSettings, WanConfig
from .errors import RouterAuthError, RouterError, RouterMismatch, RouterRefused
from .parsers import parse_cli_wan
from .telnet import TelnetSession, TextDialogue
from .transcript import MASK, Masker, Transcript

log = logging.getLogger(__name__)


class NetopiaCliDriver:
    name = "netopia-cli"

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self.dialogue = dialogue.load("netopia_cli", settings.dialogue)
        self._transcript = Transcript(Masker([settings.password]))

    def transcript(self) -> str:
        return self._transcript.text()

    def _session(self) -> TelnetSession:
        s = self.settings
        return TelnetSession(s.host, s.port, connect_timeout=s.connect_timeout,
                             step_timeout=s.step_timeout, transcript=self._transcript)

    async def _login(self, t: TextDialogue) -> None:
        d = self.dialogue
        patterns = {
            "username": d.pattern("login", "username_prompt"),
            "password": d.pattern("login", "password_prompt"),
            "failed": d.pattern("login", "failed"),
            "locked": d.pattern("login", "locked"),
            "shell": d.pattern("prompts", "shell"),
        }
        sent_password = False
        for _ in range(4):
            name, _text = await t.expect("login", patterns)
            if name == "shell":
                return
            if name in ("failed", "locked"):
                what = "locked us out" if name == "locked" else "refused the login"
                raise RouterAuthError("login", f"the router {what}", t.session.recent)
            if name == "username":
                user = self.settings.username or d.text("login", "default_username")
                t.session.send(user + "\r")
            elif name == "password":
                if sent_password:
                    raise RouterAuthError("login", "asked for the password again",
                                          t.session.recent)
                if self.settings.password is None:
                    raise RouterAuthError("login", "the router asks for a password and "
                                          "none is configured (router.password_file)")
                t.session.send(self.settings.password.reveal() + "\r", shown=MASK)
                sent_password = True
        raise RouterAuthError("login", "no shell prompt after logging in", t.session.recent)

    async def _command(self, t: TextDialogue, step: str, command: str, prompt: str) -> str:
        """Run one command, wait for `prompt`, refuse the step on an error line."""
        t.session.send(command + "\r")
        _name, text = await t.expect(step, {"prompt": self.dialogue.pattern("prompts", prompt)})
        # drop the router's echo of the command, if it echoes; check everything else
        reply = text.lstrip("\r\n")
        if reply.startswith(command):
            reply = reply[len(command):]
        if self.dialogue.pattern("errors", "pattern").search(reply):
            raise RouterRefused(step, f"the router refused {command!r}", t.session.recent)
        return reply

    async def _read(self, t: TextDialogue) -> WanConfig:
        d = self.dialogue
        interfaces = await self._command(t, "read interfaces",
                                         d.text("commands", "read_interfaces"), "shell")
        routes = await self._command(t, "read routes", d.text("commands", "read_routes"),
                                     "shell")
        return parse_cli_wan(interfaces, routes, d.pattern("parse", "interface"),
                             d.pattern("parse", "default_route"))

    async def _discard(self, t: TextDialogue) -> None:
        """Leave config mode without saving, so the refusal leaves nothing pending."""
        with contextlib.suppress(RouterError):
            t.session.send(self.dialogue.text("commands", "exit") + "\r")
            await t.expect("discard", {"prompt": self.dialogue.pattern("prompts", "shell")})
        self._transcript.note("left config mode without saving")

    def _logout(self, t: TextDialogue) -> None:
        # leaving anyway: close() follows, so a failed goodbye does not matter
        with contextlib.suppress(RouterError):
            t.session.send(self.dialogue.text("commands", "logout") + "\r")

    async def read_wan(self) -> WanConfig:
        self._transcript = Transcript(self._transcript.mask)
        return await self._read_session()

    async def _read_session(self) -> WanConfig:
        async with self._session() as session:
            t = TextDialogue(session)
            await self._login(t)
            wan = await self._read(t)
            self._logout(t)
        self._transcript.note(f"read: {wan}")
        return wan

    def plan(self, current: WanConfig, target: WanConfig) -> list[str]:
        """What `apply_wan(target)` would send, for `--dry-run`; nothing is sent."""
        if current == target:
            return []
        d = self.dialogue
        values = {**target.as_dict(), "prefixlen": str(target.prefixlen)}
        return [d.text("commands", "configure"), *d.templates("commands", "set", **values),
                d.text("commands", "save"), d.text("commands", "exit")]

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        self._transcript = Transcript(self._transcript.mask)
        d = self.dialogue
        values = {**target.as_dict(), "prefixlen": str(target.prefixlen)}
        commands = d.templates("commands", "set", **values)
        async with self._session() as session:
            t = TextDialogue(session)
            await self._login(t)
            current = await self._read(t)
            if current == target:
                self._transcript.note(f"already at {target}: nothing changed, nothing saved")
                self._logout(t)
                return current
            self._transcript.note(f"changing {current} -> {target}")
            await self._command(t, "configure", d.text("commands", "configure"), "config")
            try:
                for command in commands:
                    await self._command(t, command, command, "config")
                await self._command(t, "save", d.text("commands", "save"), "config")
            except RouterRefused:
                await self._discard(t)
                raise
            self._transcript.note("saved")
            await self._command(t, "exit", d.text("commands", "exit"), "shell")
            self._logout(t)
        log.info("router %s: saved WAN %s; reading back", self.name, target)
        back = await self._read_session()
        if back != target:
            raise RouterMismatch("read back", f"asked for {target}, the router reports {back}",
                                 saved=True)
        return back
