"""The publisher fan-out: every publisher hears every call; a broken one is skipped."""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.actions import Finished
from daemon.machine import Transition
from daemon.model import ProbeSummary
from daemon.publish.fanout import FanOut


class Broken:
    connected: bool | None = None

    def probe(self, summary: ProbeSummary) -> None:
        raise RuntimeError("broken publisher")


class Recorder:
    def __init__(self, connected: bool | None) -> None:
        self.connected = connected
        self.probes: list[ProbeSummary] = []

    def state(self, snap: object) -> None: ...
    def event(self, event: object) -> None: ...
    def transition(self, t: Transition, failover_seconds: float | None) -> None: ...
    def finished(self, done: Finished) -> None: ...

    def probe(self, summary: ProbeSummary) -> None:
        self.probes.append(summary)


SUMMARY = ProbeSummary("192.0.2.1", True, 0.0, 1.5, datetime(2026, 1, 1, tzinfo=UTC))


def test_a_publisher_that_raises_does_not_stop_the_next_one() -> None:
    after = Recorder(connected=None)
    FanOut([Broken(), after]).probe(SUMMARY)  # type: ignore[list-item]
    assert after.probes == [SUMMARY]


def test_connected_means_every_publisher_with_a_connection_is_connected() -> None:
    assert FanOut([Recorder(True), Recorder(None)]).connected is True
    assert FanOut([Recorder(True), Recorder(False)]).connected is False


def test_connected_is_false_without_a_connected_publisher() -> None:
    assert FanOut([Recorder(None)]).connected is False
    assert FanOut().connected is False
