"""One `Publisher` protocol for everything the daemon tells the world, and a fan-out.

The supervisor and its parts talk to one `FanOut`; each configured publisher (MQTT,
metrics) sits behind it, so no part of the daemon holds an optional MQTT client or checks
for one. The journal is the audit trail's own log line (`audit.Auditor`), which numbers
every event before the fan-out passes it on. A publisher that raises is logged and
skipped: it never stops the others or the decision loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

from ..machine import ApplyWan, Transition, VerifyMx
from ..model import AuditEvent, ProbeSummary, StateSnapshot

if TYPE_CHECKING:
    from ..actions import Finished
    from .metrics import Metrics
    from .mqtt import MqttPublisher

log = structlog.get_logger("dslfailover.publish")


class Publisher(Protocol):
    """What a publisher hears. Each method is cheap and never blocks (queues if it must)."""

    def state(self, snap: StateSnapshot) -> None: ...
    def event(self, event: AuditEvent) -> None: ...
    def probe(self, summary: ProbeSummary) -> None: ...
    def transition(self, t: Transition, failover_seconds: float | None) -> None: ...
    def finished(self, done: Finished) -> None: ...

    @property
    def connected(self) -> bool | None:
        """True/False for a publisher with a connection; None for one without."""
        ...


class FanOut:
    """Passes each call to every publisher in turn."""

    def __init__(self, publishers: Sequence[Publisher] = ()) -> None:
        self.publishers = list(publishers)

    def _each(self, what: str, *args: object) -> None:
        for pub in self.publishers:
            try:
                getattr(pub, what)(*args)
            except Exception:  # a broken publisher must not stop the others
                log.exception("publisher_failed", publisher=type(pub).__name__, call=what)

    def state(self, snap: StateSnapshot) -> None:
        self._each("state", snap)

    def event(self, event: AuditEvent) -> None:
        self._each("event", event)

    def probe(self, summary: ProbeSummary) -> None:
        self._each("probe", summary)

    def transition(self, t: Transition, failover_seconds: float | None) -> None:
        self._each("transition", t, failover_seconds)

    def finished(self, done: Finished) -> None:
        self._each("finished", done)

    @property
    def connected(self) -> bool:
        """Whether the connected publishers (MQTT) are connected; False when there are none."""
        states = [pub.connected for pub in self.publishers if pub.connected is not None]
        return bool(states) and all(states)


class Quiet:
    """A publisher that hears nothing: the base of publishers that want only some calls."""

    def state(self, snap: StateSnapshot) -> None:
        """Not published by this one."""

    def event(self, event: AuditEvent) -> None:
        """Not published by this one."""

    def probe(self, summary: ProbeSummary) -> None:
        """Not published by this one."""

    def transition(self, t: Transition, failover_seconds: float | None) -> None:
        """Not published by this one."""

    def finished(self, done: Finished) -> None:
        """Not published by this one."""

    @property
    def connected(self) -> bool | None:
        return None


class MqttOut(Quiet):
    """MQTT: retained state and probes, every audit event at QoS 1 (transitions and
    actions reach it as those events)."""

    def __init__(self, mqtt: MqttPublisher) -> None:
        self.mqtt = mqtt

    def state(self, snap: StateSnapshot) -> None:
        self.mqtt.publish_state(snap)

    def event(self, event: AuditEvent) -> None:
        self.mqtt.publish_event(event)

    def probe(self, summary: ProbeSummary) -> None:
        self.mqtt.publish_probe(summary)

    @property
    def connected(self) -> bool | None:
        return self.mqtt.connected


class MetricsOut(Quiet):
    """Prometheus: gauges from snapshots and probes, counters from transitions and actions."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def transition(self, t: Transition, failover_seconds: float | None) -> None:
        if failover_seconds is not None:
            self.metrics.failover_duration(failover_seconds)
        self.metrics.count_transition(t.from_state, t.to_state, t.cause.value)

    def finished(self, done: Finished) -> None:
        ok = done.outcome.event.ok
        if isinstance(done.action, ApplyWan):
            self.metrics.router_action(done.action.circuit.value, ok, done.outcome.seconds)
        if isinstance(done.action, VerifyMx):
            for check in done.outcome.detail.get("checks", []):
                self.metrics.mx_check(check["name"], check["ok"])

    def state(self, snap: StateSnapshot) -> None:
        self.metrics.set_state(snap)

    def probe(self, summary: ProbeSummary) -> None:
        self.metrics.observe_probe(summary)
