"""parse_command: the strict schema of `<prefix>/cmd`, and that no input makes it raise."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.control.commands import MAX_COMMAND_BYTES, excerpt, parse_command
from daemon.model import Action, OperatorCommand, RejectedCommand


def rejected(payload: bytes) -> RejectedCommand:
    result = parse_command(payload, source="mqtt")
    assert isinstance(result, RejectedCommand), result
    assert result.source == "mqtt"
    return result


@pytest.mark.parametrize("action", [a.value for a in Action])
def test_each_action_is_accepted(action: str) -> None:
    result = parse_command(json.dumps({"action": action}).encode(), source="mqtt")
    assert result == OperatorCommand(Action(action), "", "mqtt")


def test_reason_is_passed_on() -> None:
    result = parse_command(b'{"action": "hold", "reason": "line works"}', source="x")
    assert result == OperatorCommand(Action.HOLD, "line works", "x")


def test_failback_may_be_forced() -> None:
    result = parse_command(b'{"action": "failback", "force": true}', source="mqtt")
    assert result == OperatorCommand(Action.FAILBACK, "", "mqtt", force=True)


def test_reason_of_200_characters_is_accepted() -> None:
    payload = json.dumps({"action": "verify", "reason": "r" * 200}).encode()
    assert isinstance(parse_command(payload, source="mqtt"), OperatorCommand)


@pytest.mark.parametrize(("payload", "why"), [
    (b"", "not JSON"),
    (b"failover", "not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "not a JSON object but an array"),
    (b'"failover"', "not a JSON object but a string"),
    (b"null", "not a JSON object but null"),
    (b"{}", "missing key 'action'"),
    (b'{"action": "reboot"}', "unknown action 'reboot'"),
    (b'{"action": "FAILOVER"}', "unknown action"),
    (b'{"action": 1}', "'action' must be a string, not a number"),
    (b'{"action": ["hold"]}', "'action' must be a string, not an array"),
    (b'{"action": "hold", "force": true}', "'force' is for failback only, not hold"),
    (b'{"action": "failback", "force": 1}', "'force' must be a boolean, not a number"),
    (b'{"action": "hold", "uid": 0}', "unexpected key(s) 'uid'; allowed: action, reason, force"),
    (b'{"action": "hold", "reason": 5}', "'reason' must be a string"),
    (b'{"action": "hold", "reason": null}', "'reason' must be a string, not null"),
    (b'{"action": "hold", "reason": "a\\nb"}', "control"),
    (b'{"action": "hold", "action": "failover"}', "appears twice"),
])
def test_bad_payload_is_rejected_saying_why(payload: bytes, why: str) -> None:
    assert why in rejected(payload).why


def test_reason_over_200_characters_is_rejected() -> None:
    payload = json.dumps({"action": "hold", "reason": "r" * 201}).encode()
    assert "201 characters (limit 200)" in rejected(payload).why


def test_payload_over_the_size_limit_is_rejected_before_parsing() -> None:
    payload = b'{"action": "hold", "reason": "' + b" " * MAX_COMMAND_BYTES + b'"}'
    result = rejected(payload)
    assert "too big" in result.why
    assert len(result.excerpt) <= 61


def test_deeply_nested_json_is_rejected() -> None:
    assert "nested too deeply" in rejected(b"[" * 1020).why


def test_excerpt_is_short_and_printable() -> None:
    text = excerpt(b"\x00\x1b[31mred\xff" + b"x" * 500)
    assert text.isprintable()
    assert len(text) <= 61
    assert text.endswith("…")
    assert text.startswith("\\x00\\x1b[31mred\\xff")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    result = parse_command(payload, source="mqtt")
    assert isinstance(result, OperatorCommand | RejectedCommand)
    if isinstance(result, RejectedCommand):
        assert result.excerpt.isprintable()
        assert len(result.excerpt) <= 61


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_and_only_the_schema_passes(value: object) -> None:
    result = parse_command(json.dumps(value).encode(), source="mqtt")
    if isinstance(result, OperatorCommand):
        assert isinstance(value, dict)
        assert set(value) <= {"action", "reason"}
        assert value["action"] in {a.value for a in Action}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["action", "reason", "extra"]),
                       st.sampled_from(["hold", "verify", "nope", 1, None, "x" * 250]),
                       max_size=3))
def test_near_miss_objects_are_judged_by_the_schema(value: dict[str, object]) -> None:
    result = parse_command(json.dumps(value).encode(), source="mqtt")
    good = (set(value) <= {"action", "reason"} and value.get("action") in ("hold", "verify")
            and isinstance(value.get("reason", ""), str)
            and len(str(value.get("reason", ""))) <= 200)
    assert isinstance(result, OperatorCommand) == good
