"""Parsing operator commands received as bytes (MQTT `<prefix>/cmd`): pure, never raises.

The schema is strict (DESIGN §7): a JSON object `{"action": <Action>, "reason": <str>}`
where `reason` is optional, at most `MAX_REASON_CHARS` characters and has no control
characters (it ends up in the journal), and nothing else: no extra keys, no duplicate
keys, at most `MAX_COMMAND_BYTES` bytes of UTF-8. Anything else becomes a
`RejectedCommand` that says why and carries a short printable excerpt of what came in, so
that it can be reported as an event without echoing a megabyte of junk.
"""

from __future__ import annotations

import json
from typing import Any

from ..model import Action, OperatorCommand, RejectedCommand

MAX_COMMAND_BYTES = 1024
MAX_REASON_CHARS = 200
EXCERPT_CHARS = 60
ALLOWED_KEYS = frozenset({"action", "reason"})


class _Reject(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def excerpt(data: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable rendering of `data`: escapes for anything unprintable, '…' if cut."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
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
            raise _Reject(f"key {excerpt(key, 30)!r} appears twice")
        result[key] = value
    return result


def _decode(payload: bytes) -> Any:
    if len(payload) > MAX_COMMAND_BYTES:
        raise _Reject(f"too big: {len(payload)} bytes (limit {MAX_COMMAND_BYTES})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(f"not UTF-8 (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _Reject(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _Reject("not acceptable JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise _Reject(f"not acceptable JSON: {excerpt(str(exc), 80)}") from None


def _validate(data: Any) -> tuple[Action, str]:
    if not isinstance(data, dict):
        raise _Reject(f"not a JSON object but {_json_type(data)}")
    extra = sorted(set(data) - ALLOWED_KEYS)
    if extra:
        names = ", ".join(repr(excerpt(k, 30)) for k in extra[:5])
        raise _Reject(f"unexpected key(s) {names}; allowed: action, reason")
    if "action" not in data:
        raise _Reject("missing key 'action'")
    action = data["action"]
    if not isinstance(action, str):
        raise _Reject(f"'action' must be a string, not {_json_type(action)}")
    try:
        parsed = Action(action)
    except ValueError:
        allowed = "|".join(a.value for a in Action)
        raise _Reject(f"unknown action {excerpt(action, 30)!r}; allowed: {allowed}") from None
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise _Reject(f"'reason' must be a string, not {_json_type(reason)}")
    if len(reason) > MAX_REASON_CHARS:
        raise _Reject(f"'reason' is {len(reason)} characters (limit {MAX_REASON_CHARS})")
    if not reason.isprintable():
        raise _Reject("'reason' contains control or unprintable characters")
    return parsed, reason


def _json_type(value: Any) -> str:
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
        action, reason = _validate(_decode(payload))
    except _Reject as rej:
        return RejectedCommand(why=rej.why, source=source, excerpt=excerpt(payload))
    return OperatorCommand(action=action, reason=reason, source=source)
