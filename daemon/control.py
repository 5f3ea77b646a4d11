"""The local control socket: operator status and commands over a unix socket (DESIGN §8).

Protocol: one request per connection, one JSON object on one line, answered by one JSON
line, then the server closes the connection.

    {"op": "status"}
        -> {"ok": true, "status": {...the daemon's status...}}
    {"op": "command", "action": "failover"|"failback"|"hold"|"resume"|"verify",
     "reason": "text"}
        -> {"ok": true, "accepted": bool, "detail": "text", ...}
    anything else
        -> {"ok": false, "error": "what was wrong"}   (and the daemon's audit hears of it)

Who is asking comes from the kernel (SO_PEERCRED), never from the request, and access is
the socket file's mode (0660) and group: whoever may open the file may command the daemon.
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
from typing import Any, Literal

import structlog

from .model import Action, OperatorCommand, RejectedCommand

log = structlog.get_logger("dslfailover.control")

# Longest request line accepted; a real request is under 1 KiB. Bounds memory per client.
MAX_REQUEST_BYTES = 4096
# Longest response line the client reads (a status with its recent events is a few KiB).
MAX_RESPONSE_BYTES = 1024 * 1024
# Longest operator reason kept; it ends up on MQTT and in the journal.
MAX_REASON_CHARS = 500
# Bounds how long a connected client may take to send its request line; a client that
# connects and says nothing must not hold a handler (and a file descriptor) forever.
CLIENT_READ_TIMEOUT = 5.0
# Bounds writing the answer to a client that stopped reading.
CLIENT_WRITE_TIMEOUT = 5.0
# Bounds the daemon's handling of one command (submit); `verify` runs the MX checks, whose
# own timeouts (actions.mx_timeout, 60 s by default) come first.
SUBMIT_TIMEOUT = 120.0
# Bounds the "is a live daemon serving this socket?" connect test before we replace a file.
LIVENESS_TIMEOUT = 1.0
# Connections handled at once; more wait in the listen backlog. Local operators only.
MAX_CLIENTS = 8

SOCKET_MODE = 0o660
_EXCERPT_CHARS = 120
_OPS = ("status", "command")
_COMMAND_KEYS = frozenset({"op", "action", "reason"})


class ControlError(Exception):
    """Anything that went wrong with the control socket, on either side."""


class ControlSetupError(ControlError):
    """The server cannot take the socket path (a live daemon, a non-socket file, a group)."""


class ControlUnavailable(ControlError):
    """No daemon is listening on the socket (no file, or a stale one)."""


class ControlPermissionError(ControlError):
    """The socket exists but this user may not open it (mode 0660 and its group)."""


class ControlTimeout(ControlError):
    """The daemon accepted the connection but did not answer in time."""


class ControlProtocolError(ControlError):
    """The daemon's answer was not one JSON object on one line."""


@dataclass(frozen=True, slots=True)
class PeerCred:
    pid: int
    uid: int
    gid: int

    @property
    def source(self) -> str:
        return f"control uid={self.uid} pid={self.pid}"


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request: `status`, or a `command` with its action and reason."""

    op: Literal["status", "command"]
    action: Action | None = None
    reason: str = ""


class BadRequest(Exception):
    """A request that is refused before it reaches the daemon. Internal to this module."""

    def __init__(self, why: str, raw: bytes) -> None:
        super().__init__(why)
        self.why = why
        self.raw = raw


def excerpt(raw: bytes, limit: int = _EXCERPT_CHARS) -> str:
    """A short printable excerpt of what a client sent (for the audit and the journal)."""
    text = raw[:limit * 4].decode("utf-8", errors="replace")
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if len(shown) > limit:
        return shown[:limit] + "…"
    return shown


def parse_request(raw: bytes) -> Request:
    """Validate one request line.

    Pure: raises `BadRequest` with a reason that names the offending field.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request is not UTF-8 (byte {exc.start})", raw) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request is not JSON: {exc.msg} at column {exc.colno}", raw) from None
    except RecursionError:
        raise BadRequest("request is not JSON: nested too deeply", raw) from None
    if not isinstance(data, dict):
        raise BadRequest(f"request must be a JSON object, got {type(data).__name__}", raw)
    op = data.get("op")
    if op not in _OPS:
        raise BadRequest(f"op: must be one of {', '.join(_OPS)} (got {op!r:.60})", raw)
    if op == "status":
        extra = sorted(set(data) - {"op"})
        if extra:
            raise BadRequest(f"unknown key(s) for op status: {', '.join(extra)}", raw)
        return Request("status")
    extra = sorted(set(data) - _COMMAND_KEYS)
    if extra:
        raise BadRequest(f"unknown key(s) for op command: {', '.join(extra)}", raw)
    action = data.get("action")
    allowed = [a.value for a in Action]
    if not isinstance(action, str) or action not in allowed:
        raise BadRequest(f"action: must be one of {', '.join(allowed)} (got {action!r:.60})",
                         raw)
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise BadRequest(f"reason: must be a string (got {type(reason).__name__})", raw)
    if len(reason) > MAX_REASON_CHARS:
        raise BadRequest(f"reason: longer than {MAX_REASON_CHARS} characters", raw)
    if not reason.isprintable():
        raise BadRequest("reason: contains control characters", raw)
    return Request("command", Action(action), reason.strip())


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
    `submit(cmd)` handles a validated command and returns `{"accepted": bool, "detail":
    str, ...}`, and `audit_rejected(rej)` hears of every refused request. A bad client
    never takes the server down.
    """

    def __init__(self, path: Path, *, group: str | None,
                 status: Callable[[], dict[str, Any]],
                 submit: Callable[[OperatorCommand], Awaitable[dict[str, Any]]],
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
        if request.action is None:
            response = await self._answer_status()
        else:
            cmd = OperatorCommand(action=request.action, reason=request.reason,
                                  source=peer.source)
            response = await self._answer_command(cmd)
        await self._send(writer, response)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The request line, None for a silent hang-up; `BadRequest` when it never comes."""
        try:
            async with asyncio.timeout(self._read_timeout):
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    # the oversize data stays buffered: take a little of it for the audit
                    head = await reader.read(_EXCERPT_CHARS)
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
        rejected = RejectedCommand(why=why, source=peer.source, excerpt=excerpt(raw))
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

    async def _answer_command(self, cmd: OperatorCommand) -> dict[str, Any]:
        log.info("control_command", action=cmd.action.value, reason=cmd.reason,
                 source=cmd.source)
        try:
            async with asyncio.timeout(self._submit_timeout):
                result = await self._submit(cmd)
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


async def request(path: Path, message: dict[str, Any], *,
                  timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the daemon's control socket and return its answer.

    `timeout` bounds the whole exchange (connect, send, answer). Raises a `ControlError`:
    `ControlUnavailable` when no daemon is listening, `ControlPermissionError`,
    `ControlTimeout`, or `ControlProtocolError` for an answer that is not a JSON object.
    """
    line = json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(
                str(path), limit=MAX_RESPONSE_BYTES)
            try:
                writer.write(line)
                await writer.drain()
                answer = await reader.readuntil(b"\n")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlUnavailable(
            f"no daemon is listening on {path} ({exc.strerror or exc}); is "
            "`dslfailover run` running, and is [control].socket the same?") from None
    except PermissionError:
        raise ControlPermissionError(
            f"permission denied on {path}: run as root or as a member of the socket's "
            "group ([control].group)") from None
    except TimeoutError:
        raise ControlTimeout(f"the daemon on {path} did not answer within {timeout:g}s") \
            from None
    except asyncio.IncompleteReadError as exc:
        raise ControlProtocolError(
            f"the daemon on {path} closed the connection without a complete answer "
            f"(got {excerpt(exc.partial)!r})") from None
    except asyncio.LimitOverrunError:
        raise ControlProtocolError(
            f"the daemon's answer on {path} is longer than {MAX_RESPONSE_BYTES} bytes") \
            from None
    except OSError as exc:
        raise ControlUnavailable(f"cannot talk to the daemon on {path}: "
                                 f"{exc.strerror or exc}") from None
    try:
        data = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlProtocolError(
            f"the daemon's answer on {path} is not JSON: {excerpt(answer)!r}") from None
    if not isinstance(data, dict):
        raise ControlProtocolError(
            f"the daemon's answer on {path} is not a JSON object: {excerpt(answer)!r}")
    return data
