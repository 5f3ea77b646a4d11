"""The operator's side of the daemon: commands in (socket, MQTT), status out.

A command becomes a machine event; `submit` waits for the machine's verdict on it
(accepted or refused, and the state it left) and, when asked to wait, for the end of
the action it started (`Awaited`, judged after every later step by `follow`). A command
refused before it reaches the machine (bad JSON, an unknown action) is audited here.
`status` is the daemon's view for `dslfailover status`: the state snapshot, the actions
in flight, the deadlines, per-target loss and the recent events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import machine as m
from . import resources
from .actions import NAMES
from .audit import Auditor
from .model import (
    Action,
    EventKind,
    OperatorCommand,
    ProbeSummary,
    RejectedCommand,
    State,
    StateSnapshot,
)
from .store import Store

# Bounds the wait for the decision loop to rule on a command (it runs between events).
VERDICT_TIMEOUT = 5.0
RECENT_EVENTS = 10    # events shown by `status`

Deliver = Callable[[m.Event], None]
Answer = dict[str, Any]
# Where a waited-for move should end: anything else is the move failing (fault, held).
_TARGET = {Action.FAILOVER: State.BACKUP, Action.FAILBACK: State.PRIMARY}
_MOVING = (State.FAILING_OVER, State.FAILING_BACK)
_VERIFY = NAMES[m.VerifyMx]


@dataclass(frozen=True, slots=True)
class Awaited:
    """An accepted command whose asker waits for the end of what it started: a move
    (failover, failback: until the state is no longer failing over or back, the MX
    checks of a failover included) or the MX checks (verify: until their result)."""

    action: Action
    mx_job: int | None    # the VerifyMx it started

    @classmethod
    def of(cls, action: Action, d: m.Decision) -> Awaited | None:
        if action in _TARGET:
            return cls(action, None)
        if action == Action.VERIFY:
            job = next((a.action_id for a in d.actions if isinstance(a, m.VerifyMx)), None)
            return cls(action, job) if job is not None else None
        return None   # hold, resume: done when accepted

    def finished(self, event: m.Event, d: m.Decision) -> Answer | None:
        """How it ended, once `event` (decided as `d`) ends it; None while it runs on."""
        ctx = d.ctx
        if self.action == Action.VERIFY:
            if not (isinstance(event, m.MxResult) and event.action_id == self.mx_job):
                return None
            return {"ok": event.ok, "state": ctx.state.value,
                    "detail": event.detail or "backup MX verified"}
        if ctx.state in _MOVING:
            return None
        return {"ok": ctx.state == _TARGET[self.action], "state": ctx.state.value,
                "detail": ctx.reason}


@dataclass(kw_only=True)
class Operators:
    site: str
    deliver: Deliver            # onto the daemon's event queue
    audit: Auditor
    store: Store                # for the counters
    targets: Mapping[str, ProbeSummary]  # the probe loop's view of each target
    connected: Callable[[], bool]  # is MQTT connected
    _waiters: dict[int, asyncio.Future[Answer]] = field(default_factory=dict)
    _awaited: dict[Awaited, list[asyncio.Future[Answer]]] = field(default_factory=dict)

    def on_mqtt_command(self, cmd: OperatorCommand | RejectedCommand) -> None:
        if isinstance(cmd, RejectedCommand):
            self.rejected(cmd)
        else:
            self.deliver(m.Command(cmd))

    def rejected(self, cmd: RejectedCommand) -> None:
        self.audit.emit(EventKind.COMMAND, f"command rejected from {cmd.source}: {cmd.why}",
                        detail={"source": cmd.source, "excerpt": cmd.excerpt,
                                "accepted": False})

    async def submit(self, cmd: OperatorCommand, wait: float | None = None) -> Answer:
        """Hand a command to the machine and wait for its verdict (control socket); with
        `wait`, then for up to that long for the end of what it started (`finished`:
        how it ended, or None when it still runs)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Answer] = loop.create_future()
        event = m.Command(cmd)
        self._waiters[id(event)] = fut
        self.deliver(event)
        try:
            async with asyncio.timeout(VERDICT_TIMEOUT):
                verdict = await fut
        finally:
            self._waiters.pop(id(event), None)
        awaited = verdict.pop("awaited", None)
        if wait is None or not verdict["accepted"] or awaited is None:
            return verdict
        end: asyncio.Future[Answer] = loop.create_future()
        self._awaited.setdefault(awaited, []).append(end)
        try:
            async with asyncio.timeout(wait):
                return {**verdict, "finished": await end}
        except TimeoutError:
            return {**verdict, "finished": None}
        finally:
            ends = self._awaited.get(awaited, [])
            if end in ends:
                ends.remove(end)
            if not ends:
                self._awaited.pop(awaited, None)

    def answer(self, event: m.Command, d: m.Decision) -> None:
        """The machine ruled on `event`: wake whoever submitted it."""
        fut = self._waiters.get(id(event))
        if fut is None or fut.done():
            return
        note = next((n for n in d.notes if n.kind == EventKind.COMMAND), None)
        accepted = bool(note and note.detail.get("accepted"))
        fut.set_result({"accepted": accepted, "detail": note.reason if note else "",
                        "state": d.ctx.state.value,
                        "awaited": Awaited.of(event.command.action, d) if accepted else None})

    def follow(self, event: m.Event, d: m.Decision) -> None:
        """After every step: wake whoever waits for an end that `event` brought."""
        for awaited, ends in list(self._awaited.items()):
            done = awaited.finished(event, d)
            if done is None:
                continue
            if awaited.action == Action.VERIFY:
                done["report"] = self._verify_report()
            for end in ends:
                if not end.done():
                    end.set_result(done)
            del self._awaited[awaited]

    def stopping(self, state: str) -> None:
        """The daemon is stopping: whoever waits for an end hears it now, before the
        control socket closes (a router apply in flight may still finish in the grace)."""
        for ends in self._awaited.values():
            for end in ends:
                if not end.done():
                    end.set_result({"ok": False, "stopping": True, "state": state,
                                    "detail": "the daemon is stopping before it ended; a "
                                              "router apply in flight is finished first"})
        self._awaited.clear()

    def _verify_report(self) -> dict[str, Any] | None:
        """The checks of the verify that just ended: its audited outcome, emitted just
        before its result reached the machine (one MX action runs at a time)."""
        for e in reversed(self.audit.recent):
            if (e.kind == EventKind.ACTION and e.detail.get("action") == _VERIFY
                    and "ok" in e.detail):
                return {"ok": e.detail["ok"], "checks": e.detail.get("checks", [])}
        return None

    def status(self, ctx: m.Context | None, snapshot: StateSnapshot | None) -> dict[str, Any]:
        snap = snapshot.as_dict() if snapshot else {"state": "starting"}
        # the same view as the targets' MQTT summaries and metrics (paused on backup)
        targets = {name: {k: v for k, v in s.as_dict().items() if k != "at"}
                   for name, s in self.targets.items()}
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
