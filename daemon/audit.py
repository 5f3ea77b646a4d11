"""The audit trail: numbers every event, logs it, and hands it to the publishers.

One place assigns `seq`, so MQTT, the journal and metrics all agree on the order. Each
new `seq` is handed to `persist` before the event is logged or published: a daemon killed
right after an event starts again above it, so no number is ever used twice. A publisher
that fails is logged and skipped: it never blocks the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from .model import AuditEvent, EventKind, State, utcnow

log = structlog.get_logger("dslfailover.audit")

# The level of every audit event, the same whatever its source (README "Read the
# journal"): a failover, every alarm, failure and refused command is warning or higher;
# routine transitions and accepted commands are notice; actions that went well are info.
TRANSITION_LEVEL = {
    State.FAILING_OVER: "warning", State.BACKUP: "warning", State.FAULT: "error",
    State.PRIMARY: "notice", State.FAILING_BACK: "notice", State.HELD: "notice",
    State.STARTING: "info",
}


def level_of(kind: EventKind, to_state: State | None, detail: dict[str, Any]) -> str:
    """The table above, for one event."""
    if kind == EventKind.TRANSITION:
        return TRANSITION_LEVEL[to_state] if to_state is not None else "notice"
    if kind == EventKind.ACTION:
        if "interrupted" in detail:
            return "warning"
        return "error" if detail.get("ok") is False else "info"
    if kind == EventKind.COMMAND:
        return "warning" if detail.get("accepted") is False else "notice"
    return "warning"   # probe alarms: the primary down or back, the mail path failing or ok

Sink = Callable[[AuditEvent], None]
Persist = Callable[[int], None]


def _keep_in_memory(seq: int) -> None:
    """The default `persist`: nothing outlives the process."""


class Auditor:
    def __init__(self, first_seq: int = 0, persist: Persist = _keep_in_memory) -> None:
        self.seq = first_seq
        self.persist = persist   # called with each new seq, before anyone hears of it
        self.sinks: list[Sink] = []
        self.recent: list[AuditEvent] = []   # the last few, for `dslfailover status`

    def emit(self, kind: EventKind, reason: str, *, from_state: State | None = None,
             to_state: State | None = None, detail: dict[str, Any] | None = None
             ) -> AuditEvent:
        self.seq += 1
        self.persist(self.seq)
        event = AuditEvent(self.seq, utcnow(), kind, from_state, to_state, reason,
                           dict(detail or {}))
        lvl = level_of(kind, to_state, event.detail)
        log.log(_stdlib_level(lvl), reason, audit_level=lvl, event_kind=kind.value,
                seq=event.seq,
                state_from=from_state.value if from_state else None,
                state_to=to_state.value if to_state else None, reason=reason,
                **{k: v for k, v in event.detail.items() if k not in _RESERVED})
        self.recent = [*self.recent[-19:], event]
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # a broken publisher must not stop the audit trail
                log.exception("audit sink failed", sink=getattr(sink, "__qualname__", "?"))
        return event


_RESERVED = {"event", "event_kind", "seq", "state_from", "state_to", "reason", "level",
             "audit_level"}


def _stdlib_level(name: str) -> int:
    return {"debug": 10, "info": 20, "notice": 20, "warning": 30, "error": 40}.get(name, 20)
