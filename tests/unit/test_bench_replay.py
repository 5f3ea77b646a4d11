"""The benchmarks' replay rules (tests/bench/replay.py), fed with hand-made rounds."""

from __future__ import annotations

import json

import pytest

from tests.bench.replay import (
    Change,
    RecordError,
    Round,
    detection,
    down_at,
    dpinger,
    loss_alarm,
    mwan3,
    ours,
    parse_record,
    runs_rule,
    segments,
)

TARGETS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def rnd(t: float, *oks: bool) -> Round:
    return Round(t, "primary", tuple((tg, ok, 1.0 if ok else None)
                                     for tg, ok in zip(TARGETS, oks, strict=True)))


def stream(pattern: str, start: float = 1000.0, step: float = 0.5) -> list[Round]:
    """'g' a round where every target answered, 'b' none, 'x' only the gateway failed."""
    rows = {"g": (True, True, True), "b": (False, False, False), "x": (False, True, True)}
    return [rnd(start + i * step, *rows[c]) for i, c in enumerate(pattern)]


OURS = {"quorum": 1, "down_after": 4, "up_after": 20, "window": 20}


def test_parse_record_reads_what_the_daemon_writes() -> None:
    line = json.dumps({"t": 12.5, "circuit": "primary",
                       "replies": [["10.0.0.1", True, 0.4], ["10.0.0.2", False, None]]})
    assert parse_record([line, ""]) == [
        Round(12.5, "primary", (("10.0.0.1", True, 0.4), ("10.0.0.2", False, None)))]


def test_parse_record_names_the_line_of_a_bad_reply() -> None:
    good = json.dumps({"t": 1, "circuit": "primary", "replies": [["a", True, 1]]})
    bad = json.dumps({"t": 2, "circuit": "primary", "replies": [["a", "yes", 1]]})
    with pytest.raises(RecordError, match=r"probes\.jsonl:2: replies\[0\]"):
        parse_record([good, bad], "probes.jsonl")


def test_parse_record_rejects_a_line_that_is_not_json() -> None:
    with pytest.raises(RecordError, match="rec:1: not JSON"):
        parse_record(["{oops"], "rec")


def test_segments_split_where_probing_paused() -> None:
    rounds = stream("ggg") + stream("gg", start=1010.0)
    assert [len(s) for s in segments(rounds, max_gap=3.0)] == [3, 2]


def test_ours_declares_down_at_the_fourth_failed_round() -> None:
    changes = ours(stream("g" * 25 + "bbbb"), **OURS)
    assert changes[-1] == Change(1000.0 + 28 * 0.5, True)


def test_ours_ignores_three_failed_rounds_in_a_row() -> None:
    assert not any(c.down for c in ours(stream("g" * 25 + "bbbg" * 20), **OURS))


def test_ours_keeps_a_round_good_while_one_target_answers() -> None:
    assert not any(c.down for c in ours(stream("x" * 50), **OURS))


def test_ours_starts_afresh_after_a_gap() -> None:
    rounds = stream("bb") + stream("bb", start=1010.0)
    assert ours(rounds, **OURS) == []


def test_runs_rule_goes_down_and_up_on_runs_in_a_row() -> None:
    samples = [(float(i), ok) for i, ok in enumerate([False] * 5 + [True] * 5)]
    assert runs_rule(samples, down=5, up=5) == [Change(4.0, True), Change(9.0, False)]


def test_runs_rule_a_good_sample_breaks_a_failed_run() -> None:
    samples = [(float(i), ok) for i, ok in enumerate([False] * 4 + [True] + [False] * 4)]
    assert runs_rule(samples, down=5, up=5) == []


def test_mwan3_only_sees_every_twentieth_round() -> None:
    # every sampled round (0, 20, 40, ...) is good; the 19 rounds between are all failed
    pattern = ("g" + "b" * 19) * 10
    assert mwan3(stream(pattern)) == []


def test_mwan3_declares_down_after_five_failed_samples_late_by_its_timeout() -> None:
    changes = mwan3(stream("b" * 100), late_fail=3.2)
    assert changes == [Change(1000.0 + 80 * 0.5 + 3.2, True)]


def test_loss_alarm_needs_the_loss_to_hold() -> None:
    # 1 in 4 lost (25 % over a 2 s window) for 6 s, then all good: high for < 10 s
    samples = [(i * 0.5, i % 4 != 0) for i in range(12)]
    samples += [(6.0 + i * 0.5, True) for i in range(40)]
    assert loss_alarm(samples, window=2, alarm_loss=0.2, hold=10) == []


def test_loss_alarm_raised_when_the_same_loss_persists() -> None:
    samples = [(i * 0.5, i % 4 != 0) for i in range(40)]
    assert loss_alarm(samples, window=2, alarm_loss=0.2, hold=10) == [Change(10.0, True)]


def test_loss_alarm_raised_after_the_hold_and_cleared_below_threshold() -> None:
    samples = [(i * 0.5, i % 4 != 0) for i in range(40)]       # 25 % loss for 20 s
    samples += [(20.0 + i * 0.5, True) for i in range(20)]     # then clean
    changes = loss_alarm(samples, window=60, alarm_loss=0.2, hold=10)
    assert changes[0] == Change(10.0, True)
    assert changes[1].down is False
    assert changes[1].t > 20.0


def test_dpinger_watches_only_the_gateway() -> None:
    changes = dpinger(stream("x" * 200), late_fail=0.0)
    assert changes[0].down
    assert changes[0].t == pytest.approx(1000.0 + 10.0)


def test_dpinger_ignores_loss_beyond_the_gateway() -> None:
    rows = [rnd(1000.0 + i * 0.5, True, False, False) for i in range(200)]
    assert dpinger(rows) == []


def test_detection_is_the_first_down_after_the_cut() -> None:
    changes = [Change(5.0, True), Change(8.0, False), Change(12.5, True)]
    assert detection(changes, cut=10.0, until=30.0) == 2.5
    assert detection(changes, cut=13.0, until=30.0) is None


def test_down_at_follows_the_last_change_before_the_time() -> None:
    changes = [Change(5.0, True), Change(8.0, False)]
    assert [down_at(changes, t) for t in (4.0, 6.0, 9.0)] == [False, True, False]
