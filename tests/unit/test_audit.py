"""The audit trail numbers each event and hands the number on before anyone hears of it."""

from __future__ import annotations

from daemon.audit import Auditor
from daemon.model import AuditEvent, EventKind


def test_each_new_seq_is_persisted_before_a_sink_sees_the_event() -> None:
    order: list[str] = []
    audit = Auditor(first_seq=41, persist=lambda seq: order.append(f"persist {seq}"))
    audit.sinks.append(lambda event: order.append(f"sink {event.seq}"))
    audit.emit(EventKind.ACTION, "apply backup: started")
    audit.emit(EventKind.ACTION, "apply backup: done")
    assert order == ["persist 42", "sink 42", "persist 43", "sink 43"]


def test_a_sink_that_raises_does_not_stop_the_next_one() -> None:
    seen: list[AuditEvent] = []

    def broken(event: AuditEvent) -> None:
        raise RuntimeError("broken sink")

    audit = Auditor()
    audit.sinks += [broken, seen.append]
    audit.emit(EventKind.COMMAND, "hold by mqtt")
    assert [e.seq for e in seen] == [1]
