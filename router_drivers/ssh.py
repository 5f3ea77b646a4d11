"""`ssh`: a router driven by shell commands over SSH (Linux, OpenWrt, VyOS-style).

Strict host keys: `RouterSettings.known_hosts` is required and an unknown or changed key
is refused (never trust-on-first-use). Key authentication only (`key_file`). By default
each command runs on its own exec channel, so there is no prompt to guess; a non-zero
exit or an error line refuses the step. With `[shell] enabled = true` the commands go
through one interactive shell instead (send, expect the prompt: the same `TextDialogue`
as the telnet CLI). Save commands run only after every apply command succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from ipaddress import AddressValueError, IPv4Address, IPv4Network

import asyncssh

from . import dialogue
from .base import RouterReading, RouterSettings, WanConfig
from .errors import (
    RouterAuthError,
    RouterConnectError,
    RouterParseError,
    RouterRefused,
    RouterTimeout,
)
from .skeleton import ApplySkeleton
from .ssh_shell import SshShell
from .telnet import TextDialogue


def parse_ssh_wan(output: str, address_re: str, gateway_re: str) -> WanConfig:
    """WAN config from the read commands' output, with the dialogue's two patterns."""
    a = re.search(address_re, output, re.MULTILINE)
    g = re.search(gateway_re, output, re.MULTILINE)
    if a is None:
        raise RouterParseError("read", f"no address (pattern {address_re!r})", output)
    if g is None:
        raise RouterParseError("read", f"no default gateway (pattern {gateway_re!r})", output)
    groups = a.groupdict()
    try:
        if groups.get("netmask"):
            netmask = IPv4Address(groups["netmask"])
        elif groups.get("prefixlen"):
            netmask = IPv4Network(f"0.0.0.0/{groups['prefixlen']}").netmask
        else:
            raise RouterParseError("read", "the address pattern has no netmask or prefixlen "
                                   "group", output)
        return WanConfig(IPv4Address(groups["address"]), netmask, IPv4Address(g["gateway"]))
    except (AddressValueError, ValueError) as exc:
        raise RouterParseError("read", f"not an IPv4 address or mask: {exc}", output) from None


class SshDriver(ApplySkeleton[asyncssh.SSHClientConnection]):
    name = "ssh"

    def __init__(self, settings: RouterSettings) -> None:
        if settings.known_hosts is None or settings.key_file is None:
            raise ValueError("the ssh driver needs RouterSettings.known_hosts and key_file")
        super().__init__(settings)
        self.dialogue = dialogue.load("ssh", settings.dialogue)
        self._shell: TextDialogue | None = None  # shell mode: the open shell

    def _vars(self, target: WanConfig | None = None) -> dict[str, str]:
        out = {"interface": self.settings.interface or self.dialogue.text("vars", "interface")}
        if target is not None:
            out |= {**target.as_dict(), "prefixlen": str(target.prefixlen)}
        return out

    async def _connect(self) -> asyncssh.SSHClientConnection:
        s = self.settings
        step = f"connect {s.host}:{s.port}"
        self._transcript.note(step)
        try:
            async with asyncio.timeout(s.connect_timeout):
                return await asyncssh.connect(
                    s.host, s.port, username=s.username or self.dialogue.text("vars", "user"),
                    client_keys=[str(s.key_file)], known_hosts=str(s.known_hosts),
                    agent_path=None, password=None, config=None,
                    preferred_auth="publickey")
        except TimeoutError as exc:
            raise RouterTimeout(step, f"no SSH session within {s.connect_timeout}s") from exc
        except asyncssh.HostKeyNotVerifiable as exc:
            raise RouterConnectError(step, "the host key is not in known_hosts "
                                     f"{s.known_hosts}: refused ({exc.reason})") from exc
        except asyncssh.PermissionDenied as exc:
            raise RouterAuthError(step, f"key authentication refused ({exc.reason})") from exc
        except (OSError, asyncssh.Error) as exc:
            raise RouterConnectError(step, f"cannot connect: {exc}") from exc

    async def _run(self, conn: asyncssh.SSHClientConnection, command: str) -> str:
        if self._shell is not None:
            return await self._run_in_shell(self._shell, command)
        self._transcript.sent(command)
        try:
            async with asyncio.timeout(self.settings.step_timeout):
                result = await conn.run(command, check=False)
        except TimeoutError as exc:
            raise RouterTimeout(command, f"no answer within {self.settings.step_timeout}s"
                                ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise RouterConnectError(command, f"connection lost: {exc}") from exc
        out = str(result.stdout or "")
        err = str(result.stderr or "")
        self._transcript.seen((out + err).rstrip("\n"))
        seen = self._transcript.mask(out + err)
        if result.exit_status != 0:
            raise RouterRefused(command, f"exited {result.exit_status}", seen)
        if self.dialogue.pattern("errors", "pattern").search(out + err):
            raise RouterRefused(command, "an error line in the output", seen)
        return out

    async def _run_in_shell(self, shell: TextDialogue, command: str) -> str:
        d = self.dialogue
        shell.session.send(command + d.text("shell", "newline"), shown=command)
        _, text = await shell.expect(command, {"prompt": d.pattern("shell", "prompt")})
        # drop the echo of the command and the prompt that ends the reply
        lines = text.replace("\r", "").split("\n")
        if lines and lines[0].strip().endswith(command.strip()):
            lines = lines[1:]
        reply = "\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else "")
        if d.pattern("errors", "pattern").search(reply):
            raise RouterRefused(command, "an error line in the output",
                                self._transcript.mask(reply))
        return reply

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """One SSH connection; in shell mode also the shell, logged in and set up."""
        async with await self._connect() as conn:
            if not self.dialogue.flag("shell", "enabled"):
                yield conn
                return
            channel = SshShell(conn, step_timeout=self.settings.step_timeout,
                               transcript=self._transcript)
            await channel.open()
            try:
                self._shell = TextDialogue(channel)
                await self._shell.expect("login", {"prompt": self.dialogue.pattern(
                    "shell", "prompt")})
                for command in self.dialogue.texts("shell", "setup"):
                    await self._run_in_shell(self._shell, command)
                yield conn
            finally:
                self._shell = None
                channel.close()

    async def _read(self, conn: asyncssh.SSHClientConnection) -> RouterReading:
        output = ""
        for command in self.dialogue.templates("commands", "read", **self._vars()):
            output += await self._run(conn, command)
        wan = parse_ssh_wan(output, self.dialogue.text("parse", "address"),
                            self.dialogue.text("parse", "gateway"))
        return RouterReading(wan)

    async def _write(self, conn: asyncssh.SSHClientConnection, current: RouterReading,
                     target: WanConfig) -> None:
        d = self.dialogue
        values = self._vars(target)
        for command in d.templates("commands", "apply", **values):
            await self._run(conn, command)
        for command in d.templates("commands", "save", **values):
            await self._run(conn, command)

    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        values = self._vars(target)
        return [*self.dialogue.templates("commands", "apply", **values),
                *self.dialogue.templates("commands", "save", **values)]
