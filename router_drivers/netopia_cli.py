"""`netopia-cli`: the Netopia SOC OS 7.x text CLI over telnet.

The documented procedure (DESIGN §5): `configure`, one `set` per value, `save` only when
every `set` was accepted, `exit`, then `restart`; the router runs the saved config only
after the restart. Read: what runs from the interface listing and the route table, what
is saved from `view ip` in config mode. Paging prompts and "are you sure" questions are
answered as they come. All commands, prompts and patterns come from
`dialogues/netopia_cli.toml` merged with user overrides.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from . import dialogue
from .base import RouterReading, RouterSettings, WanConfig
from .errors import (
    RouterAuthError,
    RouterConnectError,
    RouterError,
    RouterRefused,
    RouterTimeout,
)
from .parsers import parse_cli_wan, parse_saved
from .skeleton import ApplySkeleton
from .telnet import TelnetSession, TextDialogue
from .transcript import MASK


class NetopiaCliDriver(ApplySkeleton[TextDialogue]):
    name = "netopia-cli"

    def __init__(self, settings: RouterSettings) -> None:
        super().__init__(settings)
        self.dialogue = d = dialogue.load("netopia_cli", settings.dialogue)
        self._answers = {
            "more": (d.pattern("answers", "paging"), d.text("answers", "paging_answer")),
            "confirm": (d.pattern("answers", "confirm"), d.text("answers", "confirm_answer"))}

    def restarts(self) -> bool:
        return dialogue.restarts(self.dialogue)

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[TextDialogue]:
        async with TelnetSession.to(self.settings, self._transcript) as session:
            t = TextDialogue(session, self._answers)
            await self._login(t)
            yield t
            self._logout(t)

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

    async def _read(self, t: TextDialogue) -> RouterReading:
        d = self.dialogue
        interfaces = await self._command(t, "read interfaces",
                                         d.text("commands", "read_interfaces"), "shell")
        routes = await self._command(t, "read routes", d.text("commands", "read_routes"),
                                     "shell")
        running = parse_cli_wan(interfaces, routes, d.pattern("parse", "interface"),
                                d.pattern("parse", "default_route"))
        commands = d.texts("commands", "read_saved")
        if not commands:
            return RouterReading(running)
        await self._command(t, "configure", d.text("commands", "configure"), "config")
        listing = ""
        try:
            for command in commands:
                listing += await self._command(t, "read saved", command, "config")
        finally:
            await self._command(t, "exit", d.text("commands", "exit"), "shell")
        saved = parse_saved(listing, {k: d.pattern("parse", f"saved_{k}")
                                      for k in ("address", "netmask", "gateway")})
        return RouterReading(running, saved)

    async def _write(self, t: TextDialogue, current: RouterReading, target: WanConfig) -> None:
        d = self.dialogue
        values = {**target.as_dict(), "prefixlen": str(target.prefixlen)}
        await self._command(t, "configure", d.text("commands", "configure"), "config")
        try:
            for command in d.templates("commands", "set", **values):
                await self._command(t, command, command, "config")
            await self._command(t, "save", d.text("commands", "save"), "config")
        except RouterRefused:
            await self._discard(t)
            raise
        await self._command(t, "exit", d.text("commands", "exit"), "shell")

    async def _discard(self, t: TextDialogue) -> None:
        """Leave config mode without saving, so the refusal leaves nothing pending."""
        with contextlib.suppress(RouterError):
            t.session.send(self.dialogue.text("commands", "exit") + "\r")
            await t.expect("discard", {"prompt": self.dialogue.pattern("prompts", "shell")})
        self._transcript.note("left config mode without saving")

    async def _restart(self, t: TextDialogue) -> None:
        command = self.dialogue.text("commands", "restart")
        t.session.send(command + "\r")
        try:
            await t.expect("restart", {"never": self.dialogue.pattern("prompts", "shell")},
                           timeout=self.settings.restart_timeout)
        except RouterConnectError:
            self._transcript.note("the router dropped the session to restart")
            return
        except RouterTimeout as exc:
            raise RouterTimeout("restart", "saved, but the router did not restart within "
                                f"{self.settings.restart_timeout:g}s", exc.seen,
                                saved=True) from exc
        raise RouterRefused("restart", f"{command!r} did not restart the router (it "
                            "answered with a prompt)", t.session.recent, saved=True)

    def _logout(self, t: TextDialogue) -> None:
        # leaving anyway: close() follows, so a failed goodbye does not matter
        with contextlib.suppress(RouterError):
            t.session.send(self.dialogue.text("commands", "logout") + "\r")

    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        d = self.dialogue
        values = {**target.as_dict(), "prefixlen": str(target.prefixlen)}
        return [d.text("commands", "configure"), *d.templates("commands", "set", **values),
                d.text("commands", "save"), d.text("commands", "exit")]

    def _restart_plan(self) -> list[str]:
        return [self.dialogue.text("commands", "restart")]
