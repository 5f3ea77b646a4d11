"""The control socket's wire protocol and errors: one JSON request line, one answer line.

Protocol: one request per connection, one JSON object on one line, answered by one JSON
line, then the server closes the connection.

    {"op": "status"}
        -> {"ok": true, "status": {...the daemon's status...}}
    {"op": "command", "action": "failover"|"failback"|"hold"|"resume"|"verify",
     "reason": "text", "force": false, "wait": 120}
        -> {"ok": true, "accepted": bool, "detail": "text", "state": "...", ...}
       (the command keys follow the one schema of `commands`, the same as over MQTT)
       Without "wait" the answer comes when the state machine accepts or refuses the
       command. With "wait": seconds (failover, failback, verify), an accepted command is
       answered when the action it started has ended, or when the wait is over:
        -> {..., "finished": {"ok": bool, "state": "...", "detail": "text",
                              "report": {...}}}     (report: verify's checks)
        -> {..., "finished": null}                  (still running after the wait)
    anything else
        -> {"ok": false, "error": "what was wrong"}   (and the daemon's audit hears of it)

Who is asking comes from the kernel (SO_PEERCRED), never from the request, and access is
the socket file's mode (0660) and group: whoever may open the file may command the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .commands import CommandFields, CommandRefused, decode_object, json_type, validate_command

# Longest request line accepted; a real request is under 1 KiB. Bounds memory per client.
MAX_REQUEST_BYTES = 4096
# Longest response line the client reads (a status with its recent events is a few KiB).
MAX_RESPONSE_BYTES = 1024 * 1024
# How much of a refused request the audit and the journal show.
EXCERPT_CHARS = 120
_OPS = ("status", "command")
# The longest wait a command may ask for: longer than any router apply and MX check.
MAX_WAIT = 3600.0


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
    """A validated request: `status`, or a `command` with its fields and how long the
    asker waits for the action's end (None: the verdict only)."""

    op: Literal["status", "command"]
    command: CommandFields | None = None
    wait: float | None = None


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
        wait = _wait(data.pop("wait", None))
        fields = validate_command(data)
    except CommandRefused as refused:
        raise BadRequest(refused.why, raw) from None
    return Request("command", fields, wait)


def _wait(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandRefused(f"wait: must be a number of seconds, not {json_type(value)}")
    if not 0 < value <= MAX_WAIT:
        raise CommandRefused(f"wait: must be more than 0 and at most {MAX_WAIT:g} seconds "
                             f"(got {value:g})")
    return float(value)
