"""The dashboard's pure part (payload parsing, per-site board) without a broker."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "dashboard.py"


@pytest.fixture(scope="module")
def dash() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dslfailover_dashboard", DASHBOARD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


STATE = {"state": "held", "circuit": "primary", "primary_link": "up", "mail_path": "failing",
         "since": "2026-11-25T04:00:00Z", "reason": "hold by control uid=0", "seq": 3,
         "version": "0.1.0"}


def rendered(board: object) -> str:
    out = io.StringIO()
    Console(width=200, file=out).print(
        board.render(datetime(2026, 11, 25, 4, 5, tzinfo=UTC)))  # type: ignore[attr-defined]
    return out.getvalue()


@pytest.mark.parametrize(("payload", "why"), [
    (b"\xff\xfe", "payload is not UTF-8"),
    (b"x" * (64 * 1024 + 1), "too long"),
    (b"[1, 2]", "not a JSON object (a list)"),
    (json.dumps({**STATE, "seq": "3"}).encode(), "seq: '3' is not an integer"),
    (json.dumps({**STATE, "seq": True}).encode(), "seq: True is not an integer"),
    (json.dumps({**STATE, "since": "yesterday"}).encode(), "since: 'yesterday' is not an ISO"),
    (json.dumps({**STATE, "circuit": None}).encode(), "circuit: None is not one of"),
])
def test_bad_state_payload_names_what_is_wrong(
        dash: ModuleType, payload: bytes, why: str) -> None:
    with pytest.raises(dash.Malformed, match=re.escape(why)):
        dash.parse_state(payload)


def test_a_good_state_after_a_bad_one_clears_the_problem(dash: ModuleType) -> None:
    board = dash.Board(events_kept=3)
    board.handle("dslfailover/unixwiz/state", b"{")
    assert board.sites["unixwiz"].problem.startswith("malformed state payload")
    board.handle("dslfailover/unixwiz/state", json.dumps(STATE).encode())
    assert board.sites["unixwiz"].problem == ""
    assert board.sites["unixwiz"].state.state == "held"


def test_only_the_last_events_are_kept(dash: ModuleType) -> None:
    board = dash.Board(events_kept=2)
    for seq in range(5):
        board.handle("dslfailover/unixwiz/event", json.dumps(
            {"seq": seq, "at": "2026-11-25T04:00:00Z", "kind": "action",
             "from": None, "to": None, "reason": f"step {seq}", "detail": {}}).encode())
    assert [t.plain for t in board.sites["unixwiz"].events] == [
        "04:00:00 #3 action: step 3", "04:00:00 #4 action: step 4"]


def test_render_shows_age_and_sites_in_order(dash: ModuleType) -> None:
    board = dash.Board(events_kept=2)
    board.handle("dslfailover/zeta/state", json.dumps(STATE).encode())
    board.handle("dslfailover/alpha/availability", b"offline")
    text = rendered(board)
    assert text.index("alpha") < text.index("zeta")
    assert "2026-11-25 04:00:00Z (5 min ago)" in text
    assert "offline" in text


def test_topics_follow_the_root(dash: ModuleType) -> None:
    assert dash.topics("acme") == ["acme/+/state", "acme/+/event", "acme/+/events",
                                   "acme/+/availability"]


def event(seq: int, reason: str = "x") -> dict[str, object]:
    return {"seq": seq, "at": "2026-11-25T04:00:00Z", "kind": "action", "from": None,
            "to": None, "reason": reason, "detail": {}}


def test_the_retained_recent_list_fills_the_events_at_once_without_repeats(
        dash: ModuleType) -> None:
    board = dash.Board(events_kept=3)
    board.handle("dslfailover/unixwiz/event", json.dumps(event(7, "live")).encode())
    board.handle("dslfailover/unixwiz/events", json.dumps(
        {"events": [event(5), event(6), event(7, "live")]}).encode())
    assert [t.plain for t in board.sites["unixwiz"].events] == [
        "04:00:00 #5 action: x", "04:00:00 #6 action: x", "04:00:00 #7 action: live"]


def test_a_malformed_recent_list_is_shown_as_such(dash: ModuleType) -> None:
    board = dash.Board(events_kept=3)
    board.handle("dslfailover/unixwiz/events", b'{"events": 5}')
    [line] = board.sites["unixwiz"].events
    assert line.plain.startswith("malformed events payload: events: not a list")
