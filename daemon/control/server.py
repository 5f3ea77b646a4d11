"""The control socket's server: operator status and commands over a unix socket (DESIGN §8).

Who is asking comes from the kernel (SO_PEERCRED), never from the request, and access is
the socket file's mode (0660) and group: whoever may open the file may command the daemon.
The wire format is in `protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ..model import OperatorCommand, RejectedCommand
from .commands import excerpt
from .protocol import (
    EXCERPT_CHARS,
    MAX_REQUEST_BYTES,
    BadRequest,
    ControlSetupError,
    parse_request,
)

log = structlog.get_logger("dslfailover.control")

# Bounds how long a connected client may take to send its request line; a client that
# connects and says nothing must not hold a handler (and a file descriptor) forever.
CLIENT_READ_TIMEOUT = 5.0
# Bounds writing the answer to a client that stopped reading.
CLIENT_WRITE_TIMEOUT = 5.0
# Bounds the daemon's handling of one command (submit) beyond the wait the asker chose:
# without one, a command is answered when the state machine accepts or refuses it; with
# one, when the action it started ends or the wait is over. A backstop for a daemon that
# does not answer.
SUBMIT_TIMEOUT = 120.0
# Bounds, at stop, the clients' last answers before their connections are cut.
LAST_ANSWERS_TIMEOUT = 1.0
# Bounds the "is a live daemon serving this socket?" connect test before we replace a file.
LIVENESS_TIMEOUT = 1.0
# Connections handled at once; more wait in the listen backlog. Local operators only.
MAX_CLIENTS = 8

SOCKET_MODE = 0o660


@dataclass(frozen=True, slots=True)
class PeerCred:
    pid: int
    uid: int
    gid: int

    @property
    def source(self) -> str:
        return f"control uid={self.uid} pid={self.pid}"


def peer_credentials(sock: socket.socket) -> PeerCred:
    """The connecting process as the kernel saw it at connect() (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCred(pid=pid, uid=uid, gid=gid)


def _group_id(group: str | None) -> int | None:
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ControlSetupError(
            f"control.group: no such group {group!r} (create it, or remove the key to "
            "leave the socket to root only)") from None


def _socket_is_live(path: Path) -> bool:
    """True when something accepts connections on `path` (a live daemon)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(LIVENESS_TIMEOUT)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        # A full backlog: someone is there but busy. Never take the socket from it.
        return True
    finally:
        probe.close()
    return True


def _claim_path(path: Path) -> None:
    """Remove a stale socket file from a crashed daemon; refuse anything else."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlSetupError(
            f"control.socket: {path} exists and is not a socket; not touching it")
    if _socket_is_live(path):
        raise ControlSetupError(
            f"control.socket: another daemon is serving {path} (it answered a connect); "
            "stop it first, or give this one another control.socket")
    log.info("control_stale_socket_removed", path=str(path))
    path.unlink()


def _bind(path: Path, gid: int | None) -> socket.socket:
    """Bind and set mode and group before listen(): nobody can connect in between.

    On any failure nothing is left behind: no socket file, no open socket.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _claim_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(str(path))
        except OSError as exc:
            raise ControlSetupError(
                f"control.socket: cannot bind {path}: {exc.strerror or exc}") from None
        try:
            _restrict(path, gid)
            sock.listen(MAX_CLIENTS)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _restrict(path: Path, gid: int | None) -> None:
    try:
        os.chmod(path, SOCKET_MODE)
    except OSError as exc:
        raise ControlSetupError(
            f"control.socket: cannot set mode 0660 on {path}: {exc.strerror or exc}") from None
    if gid is None:
        return
    try:
        os.chown(path, -1, gid)
    except OSError as exc:
        raise ControlSetupError(
            f"control.group: cannot give {path} to group id {gid} ({exc.strerror or exc}): "
            "the daemon must run as root or be a member of that group") from None


class ControlServer:
    """Serves status and operator commands on a unix socket until `stop` is set.

    The daemon passes three callbacks: `status()` returns its current status (JSON-able),
    `submit(cmd, wait)` handles a validated command and returns `{"accepted": bool,
    "detail": str, ...}` (with `wait` seconds, once the action it started has ended),
    and `audit_rejected(rej)` hears of every refused request. A bad client never takes
    the server down.
    """

    def __init__(self, path: Path, *, group: str | None,
                 status: Callable[[], dict[str, Any]],
                 submit: Callable[[OperatorCommand, float | None],
                                  Awaitable[dict[str, Any]]],
                 audit_rejected: Callable[[RejectedCommand], None],
                 read_timeout: float = CLIENT_READ_TIMEOUT,
                 submit_timeout: float = SUBMIT_TIMEOUT) -> None:
        self.path = path
        self.group = group
        self._status = status
        self._submit = submit
        self._audit_rejected = audit_rejected
        self._read_timeout = read_timeout
        self._submit_timeout = submit_timeout
        self._clients: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CLIENTS)

    async def serve(self, stop: asyncio.Event) -> None:
        """Bind (replacing a stale socket, never a live one), serve, then remove the file."""
        gid = _group_id(self.group)
        sock = _bind(self.path, gid)
        ours = os.stat(self.path)
        try:
            server = await asyncio.start_unix_server(
                self._on_client, sock=sock, limit=MAX_REQUEST_BYTES)
        except BaseException:
            sock.close()
            self._remove_if_ours(ours)
            raise
        log.info("control_listening", path=str(self.path), group=self.group)
        try:
            await stop.wait()
            server.close()
            # answers being written (a waited command told the daemon stops) get a moment
            if self._clients:
                await asyncio.wait(set(self._clients), timeout=LAST_ANSWERS_TIMEOUT)
        finally:
            server.close()
            for task in list(self._clients):
                task.cancel()
            if self._clients:
                await asyncio.gather(*self._clients, return_exceptions=True)
            await server.wait_closed()
            self._remove_if_ours(ours)

    def _remove_if_ours(self, ours: os.stat_result) -> None:
        # Another daemon may have replaced our file meanwhile (after we were declared dead):
        # remove only the inode we created.
        with contextlib.suppress(FileNotFoundError):
            now = os.stat(self.path)
            if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                self.path.unlink()

    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            async with self._slots:
                await self._serve_client(reader, writer)
        except asyncio.CancelledError:
            # shutting down: no flush for a client that stopped reading (the stop is bounded)
            writer.transport.abort()
            raise
        except Exception:
            # A bug in one exchange must not end the server; the journal shows it.
            log.exception("control_client_failed")
        finally:
            # also on cancellation (shutdown): close the connection, then let it propagate
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLIENT_WRITE_TIMEOUT):
                    await writer.wait_closed()

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        peer = peer_credentials(writer.get_extra_info("socket"))
        try:
            raw = await self._read_request(reader)
            if raw is None:
                return  # connected and hung up without a word: a liveness check
            request = parse_request(raw)
        except BadRequest as bad:
            await self._refuse(writer, peer, bad.why, bad.raw)
            return
        if request.command is None:
            response = await self._answer_status()
        else:
            response = await self._answer_command(request.command.command(peer.source),
                                                  request.wait)
        await self._send(writer, response)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The request line, None for a silent hang-up; `BadRequest` when it never comes."""
        try:
            async with asyncio.timeout(self._read_timeout):
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    # the oversize data stays buffered: take a little of it for the audit
                    head = await reader.read(EXCERPT_CHARS)
                    raise BadRequest(f"request line longer than {MAX_REQUEST_BYTES} bytes",
                                     head) from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            line = exc.partial  # the last line of a stream may lack its newline
        except TimeoutError:
            raise BadRequest(f"no complete request line within {self._read_timeout:g}s",
                             b"") from None
        return line.rstrip(b"\r\n")

    async def _refuse(self, writer: asyncio.StreamWriter, peer: PeerCred,
                      why: str, raw: bytes) -> None:
        rejected = RejectedCommand(why=why, source=peer.source,
                                   excerpt=excerpt(raw, EXCERPT_CHARS))
        log.warning("control_request_rejected", why=why, source=peer.source,
                    excerpt=rejected.excerpt)
        try:
            self._audit_rejected(rejected)
        except Exception:
            log.exception("control_audit_failed")
        await self._send(writer, {"ok": False, "error": why})

    async def _answer_status(self) -> dict[str, Any]:
        try:
            status = self._status()
        except Exception as exc:
            log.exception("control_status_failed")
            return {"ok": False, "error": f"internal error reading status: {exc}"}
        return {"ok": True, "status": status}

    async def _answer_command(self, cmd: OperatorCommand, wait: float | None
                              ) -> dict[str, Any]:
        log.info("control_command", action=cmd.action.value, reason=cmd.reason,
                 source=cmd.source, force=cmd.force, wait=wait)
        try:
            async with asyncio.timeout(self._submit_timeout + (wait or 0.0)):
                result = await self._submit(cmd, wait)
        except TimeoutError:
            return {"ok": False,
                    "error": f"the daemon did not finish {cmd.action.value} within "
                             f"{self._submit_timeout:g}s; see the journal"}
        except Exception as exc:
            log.exception("control_submit_failed", action=cmd.action.value)
            return {"ok": False, "error": f"internal error handling {cmd.action.value}: {exc}"}
        if not isinstance(result, dict) or not isinstance(result.get("accepted"), bool):
            log.error("control_submit_bad_result", result=repr(result)[:200])
            return {"ok": False, "error": "internal error: the daemon gave no verdict"}
        return {"ok": True, **result}

    async def _send(self, writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        data = json.dumps(response, default=str, ensure_ascii=False).encode("utf-8") + b"\n"
        writer.write(data)
        try:
            async with asyncio.timeout(CLIENT_WRITE_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            log.info("control_client_gone_before_answer")

