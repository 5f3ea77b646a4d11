"""The SSH border of postfix_sync: asyncssh in, MxError out.

Strict host keys (a known_hosts file, never trust-on-first-use), key auth only, no agent
and no ~/.ssh/config (the daemon's behaviour must not depend on root's dotfiles). Every
wait is bounded by one of MxSettings' timeouts.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import asyncssh

from .errors import MxAuthError, MxCommandError, MxConnectError, MxError, MxHostKeyError
from .types import MxSettings

# After this many unanswered keep-alives the connection counts as dropped.
KEEPALIVE_COUNT_MAX = 3


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str


class SshLink:
    """One SSH connection (plus its SFTP session) to the backup MX, reopened on demand."""

    def __init__(self, settings: MxSettings) -> None:
        self._s = settings
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._sftp_lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"{self._s.user}@{self._s.host}:{self._s.port}"

    def _alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and self._alive():
                return self._conn
            await self._drop()
            self._conn = await self._connect()
            return self._conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        s = self._s
        if not s.known_hosts.is_file():
            raise MxHostKeyError("connect", f"known_hosts file {s.known_hosts} is missing: "
                                 "host keys are never accepted on first use")
        if not s.key_file.is_file():
            raise MxAuthError("connect", f"key file {s.key_file} is missing")
        try:
            async with asyncio.timeout(s.connect_timeout):
                return await asyncssh.connect(
                    s.host, s.port, username=s.user,
                    known_hosts=str(s.known_hosts), client_keys=[str(s.key_file)],
                    agent_path=None, config=None, preferred_auth="publickey",
                    keepalive_interval=s.keepalive, keepalive_count_max=KEEPALIVE_COUNT_MAX)
        except TimeoutError:
            raise MxConnectError("connect", f"{self.where}: no SSH session within "
                                 f"{s.connect_timeout:g}s") from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise MxHostKeyError("connect", f"{self.where}: host key not accepted: "
                                 f"{exc.reason} (unknown or changed; check "
                                 f"{s.known_hosts})") from None
        except asyncssh.PermissionDenied:
            raise MxAuthError("connect", f"{self.where}: key {s.key_file} refused") from None
        except (OSError, asyncssh.Error) as exc:
            raise MxConnectError("connect", f"{self.where}: {_describe(exc)}") from None
        except ValueError as exc:     # asyncssh: unreadable key or known_hosts file
            raise MxConnectError("connect", f"{self.where}: {exc}") from None

    async def sftp(self) -> asyncssh.SFTPClient:
        conn = await self.connection()
        # parallel reads share one SFTP session: only the first caller opens it
        async with self._sftp_lock:
            if self._sftp is None:
                try:
                    async with asyncio.timeout(self._s.command_timeout):
                        self._sftp = await conn.start_sftp_client()
                except (TimeoutError, OSError, asyncssh.Error) as exc:
                    raise MxCommandError("sftp", f"{self.where}: no SFTP session: "
                                         f"{_describe(exc)}") from None
            return self._sftp

    async def run(self, argv: Sequence[str], step: str, *, check: bool = True) -> CommandResult:
        command = shlex.join(argv)
        conn = await self.connection()
        try:
            async with asyncio.timeout(self._s.command_timeout):
                proc = await conn.run(command, check=False, stdin=asyncssh.DEVNULL)
        except TimeoutError:
            raise MxCommandError(step, f"{command!r} did not finish within "
                                 f"{self._s.command_timeout:g}s") from None
        except (OSError, asyncssh.Error) as exc:
            await self._drop()
            raise MxConnectError(step, f"{self.where}: {_describe(exc)}") from None
        result = CommandResult(command, proc.exit_status if proc.exit_status is not None
                               else -1, _text(proc.stdout), _text(proc.stderr))
        if check and result.exit_status != 0:
            raise MxCommandError(step, f"{command!r} exited {result.exit_status}",
                                 seen=(result.stderr or result.stdout).strip())
        return result

    async def _drop(self) -> None:
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            try:
                async with asyncio.timeout(self._s.connect_timeout):
                    await conn.wait_closed()
            except (TimeoutError, OSError, asyncssh.Error):
                pass     # already gone; nothing more to release

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return exc.reason
    if isinstance(exc, OSError) and exc.errno:
        # asyncio's "Connect call failed (...)" hides the reason; the errno has it
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def sftp_error(step: str, path: str, exc: BaseException) -> MxError:
    """SFTP and OS errors on one remote file, converted with the path named."""
    if isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
        return MxConnectError(step, f"{path}: {_describe(exc)}")
    return MxCommandError(step, f"{path}: {_describe(exc)}")
