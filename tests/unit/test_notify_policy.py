"""The notice policy, driven with plain events, a number for the monotonic clock and a
wall time: kinds, the rate limit, quiet hours, the held-back line, the text."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from daemon.config_outside import NotifyConfig
from daemon.model import AuditEvent, EventKind, State
from daemon.publish.notify_policy import BODY_MAX, RATE_WINDOW, NoticePolicy, in_window

NOON = time(12, 0)
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def policy(**cfg: Any) -> NoticePolicy:
    return NoticePolicy(NotifyConfig(urls_file=Path("urls"), **cfg), "office")


def transition(reason: str = "primary down", **detail: Any) -> AuditEvent:
    return AuditEvent(1, AT, EventKind.TRANSITION, State.PRIMARY, State.FAILING_OVER,
                      reason, detail)


def alarm(reason: str = "target 192.0.2.1 lost") -> AuditEvent:
    return AuditEvent(2, AT, EventKind.PROBE_ALARM, None, None, reason)


def test_a_transition_becomes_a_notice_with_title_reason_and_states() -> None:
    notice = policy().decide(transition(loss=0.5), 0.0, NOON)
    assert notice is not None
    assert notice.title == "dslfailover office: transition"
    assert notice.kind is EventKind.TRANSITION
    assert notice.body == "primary down\nprimary -> failing_over\nloss=0.5"


def test_kinds_filter_drops_other_kinds_without_counting_them() -> None:
    rules = policy(kinds=["transition"])
    assert rules.decide(alarm(), 0.0, NOON) is None
    command = AuditEvent(3, AT, EventKind.COMMAND, None, None, "failover by alice")
    assert rules.decide(command, 0.0, NOON) is None
    notice = rules.decide(transition(), 1.0, NOON)
    assert notice is not None and "held back" not in notice.body


def test_rate_limit_holds_at_max_per_hour_and_frees_after_the_window() -> None:
    rules = policy(max_per_hour=2)
    assert rules.decide(transition(), 0.0, NOON) is not None
    assert rules.decide(transition(), 10.0, NOON) is not None
    assert rules.decide(transition(), 20.0, NOON) is None
    assert rules.decide(transition(), RATE_WINDOW - 0.1, NOON) is None
    # the first notice has left the window, the second has not
    assert rules.decide(transition(), RATE_WINDOW, NOON) is not None
    assert rules.decide(transition(), RATE_WINDOW + 1, NOON) is None


def test_quiet_hours_hold_back_probe_alarms() -> None:
    rules = policy(quiet_hours="01:00-05:00")
    assert rules.decide(alarm(), 0.0, time(3, 0)) is None
    assert rules.decide(alarm(), 1.0, time(5, 0)) is not None   # the end is outside


def test_quiet_hours_across_midnight() -> None:
    rules = policy(quiet_hours="22:00-07:00")
    for quiet in (time(22, 0), time(23, 59), time(0, 0), time(6, 59)):
        assert rules.decide(alarm(), 0.0, quiet) is None, quiet
    for awake in (time(7, 0), time(12, 0), time(21, 59)):
        assert rules.decide(alarm(), 0.0, awake) is not None, awake


def test_window_edges_without_midnight() -> None:
    window = (time(9, 0), time(17, 30))
    assert in_window(window, time(9, 0))
    assert not in_window(window, time(17, 30))
    assert not in_window(window, time(8, 59))


def test_quiet_hours_take_a_datetime_too() -> None:
    rules = policy(quiet_hours="22:00-07:00")
    assert rules.decide(alarm(), 0.0, datetime(2024, 5, 1, 23, 30)) is None


def test_transitions_pass_quiet_hours() -> None:
    rules = policy(quiet_hours="22:00-07:00")
    assert rules.decide(transition(), 0.0, time(2, 0)) is not None


def test_the_next_notice_reports_what_was_held_back_once() -> None:
    rules = policy(quiet_hours="22:00-07:00", max_per_hour=1)
    assert rules.decide(transition(), 0.0, time(23, 0)) is not None
    assert rules.decide(transition(), 1.0, time(23, 1)) is None   # over the rate
    assert rules.decide(alarm(), 2.0, time(23, 2)) is None        # quiet
    assert rules.decide(alarm(), 3.0, time(23, 3)) is None        # quiet
    notice = rules.decide(transition(), RATE_WINDOW + 2.0, time(8, 0))
    assert notice is not None
    assert notice.body.endswith(
        "\n3 notices held back: 2 in quiet hours, 1 over the rate limit; see the journal")
    later = rules.decide(alarm(), 2 * RATE_WINDOW + 3, time(9, 0))
    assert later is not None and "held back" not in later.body


def test_one_held_back_notice_is_singular() -> None:
    rules = policy(quiet_hours="22:00-07:00")
    rules.decide(alarm(), 0.0, time(23, 0))
    notice = rules.decide(transition(), 1.0, time(23, 0))
    assert notice is not None
    assert notice.body.endswith("\n1 notice held back: 1 in quiet hours; see the journal")


def test_a_long_detail_is_cut_to_the_body_limit() -> None:
    notice = policy().decide(transition(checks=["x" * 80] * 20, note="a\nb"), 0.0, NOON)
    assert notice is not None
    assert len(notice.body) == BODY_MAX and notice.body.endswith("…")
    assert notice.body.count("\n") == 2   # the detail stays on its one line


@pytest.mark.parametrize(("template", "title"), [
    ("{site} alarm", "office alarm"),
    ("site {site} {other}", "site office {other}"),   # a stray brace is kept
])
def test_title_fills_in_the_site(template: str, title: str) -> None:
    notice = policy(title=template).decide(alarm(), 0.0, NOON)
    assert notice is not None and notice.title == f"{title}: probe alarm"
