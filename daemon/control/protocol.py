"""The control socket's wire protocol and errors: one JSON request line, one answer line.

Protocol: one request per connection, one JSON object on one line, answered by one JSON
line, then the server closes the connection.

    {"op": "status"}
        -> {"ok": true, "status": {...the daemon's status...}}
    {"op": "command", "action": "failover"|"failback"|"hold"|"resume"|"verify",
     "reason": "text"}
        -> {"ok": true, "accepted": bool, "detail": "text", ...}
       (the command keys follow the one schema of `commands`, the same as over MQTT)
    anything else
        -> {"ok": false, "error": "what was wrong"}   (and the daemon's audit hears of it)

Who is asking comes from the kernel (SO_PEERCRED), never from the request, and access is
the socket file's mode (0660) and group: whoever may open the file may command the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..model import Action
from .commands import CommandRefused, decode_object, validate_command

# Longest request line accepted; a real request is under 1 KiB. Bounds memory per client.
MAX_REQUEST_BYTES = 4096
# Longest response line the client reads (a status with its recent events is a few KiB).
MAX_RESPONSE_BYTES = 1024 * 1024
# How much of a refused request the audit and the journal show.
EXCERPT_CHARS = 120
_OPS = ("status", "command")


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
    """A request refused before it reaches the daemon: why, and what came (for the audit)."""

    def __init__(self, why: str, raw: bytes) -> None:
        super().__init__(why)
        self.why = why
        self.raw = raw


def parse_request(raw: bytes) -> Request:
    """Validate one request line: the envelope `op` here, a command by `validate_command`.

    Pure: raises `BadRequest` with a reason that names the offending field.
    """
    try:
        data = decode_object(raw, max_bytes=MAX_REQUEST_BYTES)
        op = data.pop("op", None)
        if op not in _OPS:
            raise CommandRefused(f"op: must be one of {', '.join(_OPS)} (got {op!r:.60})")
        if op == "status":
            if data:
                raise CommandRefused(
                    f"unknown key(s) for op status: {', '.join(sorted(data))}")
            return Request("status")
        action, reason = validate_command(data)
    except CommandRefused as refused:
        raise BadRequest(refused.why, raw) from None
    return Request("command", action, reason)
