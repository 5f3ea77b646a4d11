"""ProbeGate: which probe summaries go out on MQTT now and which later (times passed in)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.model import ProbeSummary
from daemon.publish.probe_gate import ProbeGate

AT = datetime(2026, 1, 1, tzinfo=UTC)


def summary(ok: bool = True, loss: float = 0.0, rtt_ms: float | None = 1.0) -> ProbeSummary:
    return ProbeSummary(name="t", ok=ok, loss=loss, rtt_ms=rtt_ms, at=AT)


def gate() -> ProbeGate:
    return ProbeGate(interval=10.0, loss_step=0.1)


def popped(g: ProbeGate, now: float) -> list[str]:
    """What the sender publishes at `now`: the keys `pop` gives until it gives None."""
    keys = []
    while (item := g.pop(now)) is not None:
        keys.append(item[0])
    return keys


def sent_now(g: ProbeGate, key: str, s: ProbeSummary, now: float) -> bool:
    """Offer `s` and let the sender publish what is ready: was `key` among it?"""
    g.offer(key, s, now)
    return key in popped(g, now)


def test_the_first_summary_of_each_key_goes_out_at_once() -> None:
    g = gate()
    assert g.offer("a", summary(), 0.0)
    assert g.offer("b", summary(), 0.1)
    assert popped(g, 0.1) == ["a", "b"]
    assert popped(g, 0.1) == []
    assert g.delay(0.1) is None


def test_an_unchanged_target_goes_out_at_most_every_interval() -> None:
    g = gate()
    assert sent_now(g, "a", summary(), 0.0)
    # 0.5 s rounds for 9.5 s: held (the RTT and `at` change, nothing that matters)
    assert not any(sent_now(g, "a", summary(rtt_ms=1.0 + t / 10), t / 2) for t in range(1, 20))
    assert g.delay(9.5) == pytest.approx(0.5)
    assert sent_now(g, "a", summary(), 10.0)
    assert g.delay(10.0) is None


def test_the_sender_is_woken_only_to_send_or_when_a_key_starts_being_held() -> None:
    g = gate()
    assert g.offer("a", summary(), 0.0)                  # to send
    assert g.offer("a", summary(rtt_ms=2.0), 0.5)        # held from now: wake to re-arm
    assert not g.offer("a", summary(rtt_ms=3.0), 1.0)    # still held: nothing new
    assert g.offer("a", summary(ok=False), 1.5)          # to send


def test_ok_flipping_goes_out_at_once_both_ways() -> None:
    g = gate()
    sent_now(g, "a", summary(), 0.0)
    assert sent_now(g, "a", summary(ok=False, rtt_ms=None), 0.5)
    assert sent_now(g, "a", summary(ok=True), 1.0)


@pytest.mark.parametrize(("released", "offered", "at_once"), [
    (0.0, 0.05, False),
    (0.0, 0.1, True),     # exactly one step
    (0.05, 0.15, True),   # 0.15 - 0.05 is 0.0999... in floats: still one step
    (0.3, 0.2, True),     # down as well as up
    (0.1, 0.15, False),
    (0.5, 0.45, False),
])
def test_loss_moving_by_a_step_goes_out_at_once(released: float, offered: float,
                                                at_once: bool) -> None:
    g = gate()
    sent_now(g, "a", summary(loss=released), 0.0)
    assert sent_now(g, "a", summary(loss=offered), 0.5) is at_once


def test_a_loss_wavering_below_a_step_is_measured_from_the_last_release() -> None:
    g = gate()
    sent_now(g, "a", summary(loss=0.05), 0.0)
    # 5 % <-> 10 % every round: never a step away from the 5 % released
    assert not any(sent_now(g, "a", summary(loss=0.1 if t % 2 else 0.05), t / 2)
                   for t in range(1, 19))
    # but 15 % is
    assert sent_now(g, "a", summary(loss=0.15), 9.5)


def test_the_held_summary_falls_due_without_another_offer() -> None:
    g = gate()
    sent_now(g, "a", summary(), 0.0)
    sent_now(g, "b", summary(), 4.0)
    assert not sent_now(g, "a", summary(rtt_ms=2.0), 1.0)
    assert not sent_now(g, "b", summary(rtt_ms=2.0), 5.0)
    assert g.delay(5.0) == pytest.approx(5.0)   # a's, released at 0
    assert popped(g, 9.9) == []
    assert popped(g, 10.0) == ["a"]
    assert g.delay(10.0) == pytest.approx(4.0)  # b's, released at 4
    assert popped(g, 14.0) == ["b"]
    assert g.delay(14.0) is None
    assert popped(g, 100.0) == []                  # nothing held: nothing due


def test_an_overdue_summary_has_no_delay() -> None:
    g = gate()
    sent_now(g, "a", summary(), 0.0)
    g.offer("a", summary(rtt_ms=2.0), 1.0)
    assert g.delay(12.0) == 0.0


def test_what_is_popped_is_the_latest_summary_of_its_key() -> None:
    g = gate()
    g.offer("a", summary(), 0.0)
    g.offer("a", summary(ok=False, loss=0.5), 0.1)   # before the sender ran
    assert g.pop(0.1) == ("a", summary(ok=False, loss=0.5))
    assert g.pop(0.1) is None


def test_a_new_connection_resends_the_latest_of_every_key() -> None:
    g = gate()
    sent_now(g, "a", summary(), 0.0)
    sent_now(g, "b", summary(), 0.0)
    assert not sent_now(g, "a", summary(rtt_ms=5.0), 1.0)   # held
    g.resend_all()
    assert g.pop(1.0) == ("a", summary(rtt_ms=5.0))
    assert g.pop(1.0) == ("b", summary())
    assert g.pop(1.0) is None


def test_interval_zero_releases_every_summary() -> None:
    g = ProbeGate(interval=0.0, loss_step=0.1)
    assert all(sent_now(g, "a", summary(rtt_ms=float(t)), t / 2) for t in range(10))
    assert g.delay(5.0) is None


def test_a_target_paused_and_resumed_goes_out_at_once_both_times() -> None:
    g = gate()
    assert sent_now(g, "t", summary(), 0.0)
    assert sent_now(g, "t", ProbeSummary.paused_at("t", AT), 1.0)
    assert sent_now(g, "t", summary(), 2.0)
