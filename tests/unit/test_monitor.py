"""The monitor's quorum, runs and windows, fed with plain echo results."""

from __future__ import annotations

import random

from daemon.model import LinkHealth
from daemon.monitor import Monitor
from daemon.probes.icmp import EchoResult

TARGETS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def rnd(*oks: bool) -> tuple[EchoResult, ...]:
    return tuple(EchoResult(t, ok, 5.0 if ok else None, None if ok else "no reply")
                 for t, ok in zip(TARGETS, oks, strict=True))


def monitor(**kw: int) -> Monitor:
    args = {"quorum": 1, "down_after": 4, "up_after": 20, "window": 20} | kw
    return Monitor(TARGETS, **args)


def test_down_after_the_configured_failed_rounds_in_a_row() -> None:
    m = monitor()
    for _ in range(3):
        assert m.observe(rnd(False, False, False)).verdict is None
    verdict = m.observe(rnd(False, False, False)).verdict
    assert verdict is not None and verdict.link == LinkHealth.DOWN
    assert "0/3 targets answered" in verdict.evidence["summary"]


def test_one_answering_target_keeps_a_round_good_with_quorum_one() -> None:
    m = monitor()
    for _ in range(10):
        assert m.observe(rnd(False, False, True)).round_ok


def test_quorum_two_needs_two_targets() -> None:
    m = monitor(quorum=2)
    assert not m.observe(rnd(False, False, True)).round_ok


def test_a_good_round_resets_the_failed_run() -> None:
    m = monitor()
    for _ in range(3):
        m.observe(rnd(False, False, False))
    m.observe(rnd(True, False, False))
    for _ in range(3):
        assert m.observe(rnd(False, False, False)).verdict is None


def test_up_needs_the_longer_run() -> None:
    m = monitor(up_after=5)
    for _ in range(4):
        assert m.observe(rnd(True, True, True)).verdict is None
    verdict = m.observe(rnd(True, True, True)).verdict
    assert verdict is not None and verdict.link == LinkHealth.UP


def test_verdicts_only_on_change() -> None:
    m = monitor(down_after=1)
    assert m.observe(rnd(False, False, False)).verdict is not None
    assert m.observe(rnd(False, False, False)).verdict is None


def test_target_changes_are_reported_once() -> None:
    m = monitor()
    first = m.observe(rnd(True, False, True))
    assert [(c.target, c.ok) for c in first.changes] == [("10.0.0.2", False)]
    assert m.observe(rnd(True, False, True)).changes == ()
    back = m.observe(rnd(True, True, True))
    assert [(c.target, c.ok) for c in back.changes] == [("10.0.0.2", True)]


def test_window_gives_loss_and_mean_rtt() -> None:
    m = monitor(window=4)
    for ok in (True, False, True, True, False):
        m.observe(rnd(ok, True, True))
    loss, rtt = m.stats("10.0.0.1")
    assert loss == 0.5  # the last 4: F T T F
    assert rtt == 5.0


def test_twenty_percent_loss_does_not_trip_the_defaults() -> None:
    # 10 minutes of rounds at 0.5 s with 36 % per-probe loss (20 % each way)
    rng = random.Random(1)
    m = monitor()
    for _ in range(1200):
        obs = m.observe(rnd(*(rng.random() > 0.36 for _ in TARGETS)))
        assert obs.verdict is None or obs.verdict.link == LinkHealth.UP


def test_the_down_verdict_says_how_long_detection_took_from_the_first_failed_round() -> None:
    m = monitor()
    for i in range(3):
        m.observe(rnd(True, True, True), started=i * 0.5, now=i * 0.5 + 0.01)
    for i in range(3, 7):  # the first failed round was sent at 1.5 s
        obs = m.observe(rnd(False, False, False), started=i * 0.5, now=i * 0.5 + 0.8)
    assert obs.verdict is not None and obs.verdict.link == LinkHealth.DOWN
    assert obs.verdict.evidence["detect_s"] == 2.3  # seen at 3.8 s, first failed sent at 1.5


def test_without_times_the_evidence_has_no_detection_time() -> None:
    m = monitor(down_after=1)
    verdict = m.observe(rnd(False, False, False)).verdict
    assert verdict is not None and "detect_s" not in verdict.evidence
