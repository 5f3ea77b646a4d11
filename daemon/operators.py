"""The operator's side of the daemon: commands in (socket, MQTT), status out.

A command becomes a machine event; `submit` waits for the machine's verdict on it
(accepted or refused, and the state it left), not for the action it starts. A command
refused before it reaches the machine (bad JSON, an unknown action) is audited here.
`status` is the daemon's view for `dslfailover status`: the state snapshot, the actions
in flight, the deadlines, per-target loss and the recent events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import machine as m
from . import resources
from .audit import Auditor
from .model import EventKind, OperatorCommand, RejectedCommand, StateSnapshot
from .monitor import Monitor
from .store import Store

# Bounds the wait for the decision loop to rule on a command (it runs between events).
VERDICT_TIMEOUT = 5.0
RECENT_EVENTS = 10    # events shown by `status`

Deliver = Callable[[m.Event], None]


@dataclass(kw_only=True)
class Operators:
    site: str
    deliver: Deliver            # onto the daemon's event queue
    audit: Auditor
    store: Store                # for the counters
    monitor: Monitor            # for per-target loss and RTT
    connected: Callable[[], bool]  # is MQTT connected
    _waiters: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    def on_mqtt_command(self, cmd: OperatorCommand | RejectedCommand) -> None:
        if isinstance(cmd, RejectedCommand):
            self.rejected(cmd)
        else:
            self.deliver(m.Command(cmd))

    def rejected(self, cmd: RejectedCommand) -> None:
        self.audit.emit(EventKind.COMMAND, f"command rejected from {cmd.source}: {cmd.why}",
                        detail={"source": cmd.source, "excerpt": cmd.excerpt,
                                "accepted": False}, level="warning")

    async def submit(self, cmd: OperatorCommand) -> dict[str, Any]:
        """Hand a command to the machine and wait for its verdict (control socket)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        event = m.Command(cmd)
        self._waiters[id(event)] = fut
        self.deliver(event)
        try:
            async with asyncio.timeout(VERDICT_TIMEOUT):
                return await fut
        finally:
            self._waiters.pop(id(event), None)

    def answer(self, event: m.Command, d: m.Decision) -> None:
        """The machine ruled on `event`: wake whoever submitted it."""
        fut = self._waiters.get(id(event))
        if fut is None or fut.done():
            return
        note = next((n for n in d.notes if n.kind == EventKind.COMMAND), None)
        accepted = bool(note and note.detail.get("accepted"))
        fut.set_result({"accepted": accepted, "detail": note.reason if note else "",
                        "state": d.ctx.state.value})

    def status(self, ctx: m.Context | None, snapshot: StateSnapshot | None) -> dict[str, Any]:
        snap = snapshot.as_dict() if snapshot else {"state": "starting"}
        targets = {}
        for t in self.monitor.targets:
            loss, rtt = self.monitor.stats(t)
            targets[t] = {"loss": round(loss, 3), "rtt_ms": rtt}
        now = time.monotonic()
        return {
            **snap,
            "site": self.site,
            "router_action": ctx.router_job_kind if ctx else None,
            "mx_action": ctx.mx_job_kind if ctx else None,
            "hold_down": m.hold_down(ctx, now) if ctx else None,
            "retry_in": max(0.0, ctx.retry_at - now) if ctx and ctx.retry_at else None,
            "targets": targets,
            "mqtt": {"connected": self.connected()},
            # what the process holds, for an admin (and the chaos soak) to watch over days
            "process": resources.of_self().as_dict(),
            "counters": {"failovers": self.store.data.failovers,
                         "failbacks": self.store.data.failbacks},
            "events": [e.as_dict() for e in self.audit.recent[-RECENT_EVENTS:]],
        }
