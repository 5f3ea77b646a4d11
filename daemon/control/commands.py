"""Operator commands: the one schema for `{action, reason}`, over MQTT and over the socket.

The schema is strict (DESIGN §7): a JSON object `{"action": <Action>, "reason": <str>,
"force": <bool>}` where `reason` is optional, at most `MAX_REASON_CHARS` characters and
has no control characters (it ends up in the journal), `force` is optional and only for
`failback` (onto a primary the monitor sees down), and nothing else: no extra keys, no duplicate
keys, at most `MAX_COMMAND_BYTES` bytes of UTF-8. `validate_command` judges the object and
`decode_object` the bytes, for both ways in: `parse_command` here (MQTT `<prefix>/cmd`,
never raises) and the control socket's `parse_request` (whose request adds its envelope
key `op`). Anything refused carries a reason that says why and, as a `RejectedCommand`, a
short printable `excerpt` of what came in, so that it can be reported as an event without
echoing a megabyte of junk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..model import Action, OperatorCommand, RejectedCommand

MAX_COMMAND_BYTES = 1024
# Longest operator reason, on both ways in; it ends up on MQTT and in the journal.
MAX_REASON_CHARS = 200
EXCERPT_CHARS = 60
ALLOWED_KEYS = frozenset({"action", "reason", "force"})


class CommandRefused(Exception):
    """What was received does not meet the schema; `why` says how (for an operator)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def excerpt(data: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable rendering of `data`: escapes for anything unprintable, '…' if cut."""
    if isinstance(data, bytes):
        # each character takes at least one place: limit + 1 of them decide the cut
        text = data[:(limit + 1) * 4].decode("utf-8", "backslashreplace")
    else:
        text = data
    out: list[str] = []
    size = 0
    for ch in text:
        piece = ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        if size + len(piece) > limit:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CommandRefused(f"key {excerpt(key, 30)!r} appears twice")
        result[key] = value
    return result


def decode_object(payload: bytes, *, max_bytes: int = MAX_COMMAND_BYTES) -> dict[str, Any]:
    """The JSON object in `payload` (UTF-8, no duplicate keys); else `CommandRefused`."""
    if len(payload) > max_bytes:
        raise CommandRefused(f"too big: {len(payload)} bytes (limit {max_bytes})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandRefused(f"not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise CommandRefused(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise CommandRefused("not acceptable JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise CommandRefused(f"not acceptable JSON: {excerpt(str(exc), 80)}") from None
    if not isinstance(data, dict):
        raise CommandRefused(f"not a JSON object but {json_type(data)}")
    return data


@dataclass(frozen=True, slots=True)
class CommandFields:
    """What a valid command object says."""

    action: Action
    reason: str      # stripped
    force: bool = False

    def command(self, source: str) -> OperatorCommand:
        return OperatorCommand(self.action, self.reason, source, self.force)


def validate_command(data: dict[str, Any]) -> CommandFields:
    """The fields of a command object; else `CommandRefused`."""
    extra = sorted(set(data) - ALLOWED_KEYS)
    if extra:
        names = ", ".join(repr(excerpt(k, 30)) for k in extra[:5])
        raise CommandRefused(f"unexpected key(s) {names}; allowed: action, reason, force")
    if "action" not in data:
        raise CommandRefused("missing key 'action'")
    action = data["action"]
    if not isinstance(action, str):
        raise CommandRefused(f"'action' must be a string, not {json_type(action)}")
    try:
        parsed = Action(action)
    except ValueError:
        allowed = "|".join(a.value for a in Action)
        raise CommandRefused(
            f"unknown action {excerpt(action, 30)!r}; allowed: {allowed}") from None
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise CommandRefused(f"'reason' must be a string, not {json_type(reason)}")
    if len(reason) > MAX_REASON_CHARS:
        raise CommandRefused(
            f"'reason' is {len(reason)} characters (limit {MAX_REASON_CHARS})")
    if not reason.isprintable():
        raise CommandRefused("'reason' contains control or unprintable characters")
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise CommandRefused(f"'force' must be a boolean, not {json_type(force)}")
    if force and parsed != Action.FAILBACK:
        raise CommandRefused(f"'force' is for failback only, not {parsed.value}")
    return CommandFields(parsed, reason.strip(), force)


def json_type(value: Any) -> str:
    """How an operator would name the JSON type of `value` ("a number", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_command(payload: bytes, *, source: str) -> OperatorCommand | RejectedCommand:
    """Turn a received payload into a command, or into a rejection saying why. Never raises."""
    try:
        fields = validate_command(decode_object(payload))
    except CommandRefused as rej:
        return RejectedCommand(why=rej.why, source=source, excerpt=excerpt(payload))
    return fields.command(source)
