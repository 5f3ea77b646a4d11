"""The control socket's wire protocol and errors: one JSON request line, one answer line.

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

import json
from dataclasses import dataclass
from typing import Literal

from ..model import Action

# Longest request line accepted; a real request is under 1 KiB. Bounds memory per client.
MAX_REQUEST_BYTES = 4096
# Longest response line the client reads (a status with its recent events is a few KiB).
MAX_RESPONSE_BYTES = 1024 * 1024
# Longest operator reason kept; it ends up on MQTT and in the journal.
MAX_REASON_CHARS = 500

EXCERPT_CHARS = 120
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


def excerpt(raw: bytes, limit: int = EXCERPT_CHARS) -> str:
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

