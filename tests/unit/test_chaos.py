"""The chaos soak's pure half (daemon/lab/chaos.py): the seeded schedule and the `seq`
checks over a journal and what a subscriber received."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from daemon.lab.chaos import KINDS, Life, check_seq, resources_report, schedule


def take(seed: int, n: int, **kwargs: Any) -> list[dict[str, Any]]:
    return [f.as_dict() for f in itertools.islice(schedule(seed, router_restart=2.0,
                                                           **kwargs), n)]


def test_the_same_seed_gives_the_same_faults_and_every_kind_comes_once_a_round() -> None:
    assert take(7, 30) == take(7, 30)
    assert take(7, 30) != take(8, 30)
    first_round = [f["kind"] for f in take(7, len(KINDS))]
    assert sorted(first_round) == sorted(KINDS)


def test_a_schedule_of_some_kinds_has_only_those_and_refuses_unknown_ones() -> None:
    assert {f["kind"] for f in take(1, 20, kinds=("cut", "daemon_kill"))} == {
        "cut", "daemon_kill"}
    with pytest.raises(ValueError, match="fault kinds"):
        next(schedule(1, router_restart=2.0, kinds=("meteor",)))  # type: ignore[arg-type]


def ev(seq: int, reason: str, at: float = 0.0) -> dict[str, Any]:
    return {"seq": seq, "event": reason, "reason": reason, "event_kind": "action", "_at": at}


def test_seq_checks_pass_a_clean_run_and_count_a_redelivery_as_a_duplicate() -> None:
    journal = [ev(1, "a"), ev(2, "b"), ev(3, "c")]
    found, summary = check_seq(journal, [ev(1, "a"), ev(2, "b"), ev(2, "b"), ev(3, "c")],
                               [], 0.0)
    assert found == []
    assert summary["mqtt_duplicates"] == 1


def test_a_seq_used_twice_after_a_restart_breaks_both_journal_and_mqtt_order() -> None:
    journal = [ev(5, "apply backup: started"), ev(5, "interrupted before it finished")]
    found, _ = check_seq(journal, journal, [], 0.0)
    assert sorted(v.invariant for v in found) == ["journal_seq_increasing",
                                                  "mqtt_seq_increasing"]


def test_a_missing_event_is_a_gap_unless_it_was_emitted_just_before_a_kill() -> None:
    journal = [ev(1, "a", 100.0), ev(2, "b", 200.0), ev(3, "c", 300.0)]
    found, _ = check_seq(journal, [ev(1, "a")], [200.3], 0.0)
    assert {v.detail["seq"]: v.invariant for v in found} == {
        2: "mqtt_no_gap_at_kill9", 3: "mqtt_no_gap"}


def test_a_life_reports_its_peak_and_the_growth_between_samples_at_rest() -> None:
    life = Life(started=100.0)
    life.add({"rss_kb": 50000, "open_fds": 12, "tasks": 9}, at_rest=True, at=101.0)
    life.add({"rss_kb": 56000, "open_fds": 15, "tasks": 14}, at_rest=False, at=102.0)
    life.add({"rss_kb": 50300, "open_fds": 12, "tasks": 9}, at_rest=True, at=160.0)
    assert life.peak == {"rss_kb": 56000, "open_fds": 15, "tasks": 14}
    assert life.growth_at_rest() == {"rss_kb": 300, "open_fds": 0, "tasks": 0}


def test_the_resources_report_takes_the_peak_of_all_lives_and_shows_the_longest() -> None:
    short, long = Life(started=0.0), Life(started=10.0)
    short.add({"rss_kb": 61440}, at_rest=False, at=5.0)
    long.add({"rss_kb": 51200}, at_rest=True, at=11.0)
    long.add({"rss_kb": 51200}, at_rest=True, at=200.0)
    never = Life(started=300.0)   # killed before its first sample
    report = resources_report([short, long, never])
    assert report["peak_rss_mb"] == 60.0
    assert report["longest_life"]["lived_s"] == 190.0
    assert report["longest_life"]["growth_at_rest"] == {"rss_kb": 0}
    assert len(report["lives"]) == 2
    assert short.growth_at_rest() is None
