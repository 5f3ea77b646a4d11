"""Runs the machine's actions as tasks: the persisted intent, the audit, the result event.

Beside the executor (which turns one action into driver or MX calls and an `Outcome`),
this is the bookkeeping around it. Before an action starts, its intent is saved, so a
crash mid-action is reported at the next start; when it ends, its outcome is audited,
published and queued for the machine. An exception from an action is a bug, ours or a
library's: it becomes a failed result (the machine goes to `fault` and retries) instead
of taking the daemon down.

At shutdown (`close`) no new action starts; a router apply in flight gets `grace` seconds
to finish (a half-done router dialogue is worse than a late exit: the router's saved and
running config must agree); everything else in flight, a router read or an MX check, is
cancelled at once: abandoning it changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from . import machine as m
from .audit import Auditor
from .executor import Executor, Outcome
from .model import EventKind
from .publish.fanout import Publisher
from .stopping import cancel_all
from .store import Store

log = structlog.get_logger("dslfailover.actions")

NAMES: dict[type[m.Effect], str] = {
    m.ReadRouter: "read router", m.ApplyWan: "apply", m.VerifyMx: "verify backup MX",
    m.RepairMx: "repair backup MX", m.FlushMx: "flush backup MX queue",
}


@dataclass(frozen=True, slots=True)
class Finished:
    """An action and how it ended, for the publishers."""

    action: m.Effect
    outcome: Outcome


def describe(action: m.Effect) -> tuple[str, str]:
    """(what the audit calls it, its intent slot: "router" or "mx")."""
    what = NAMES[type(action)]
    if isinstance(action, m.ApplyWan):
        return f"{what} {action.circuit.value}", "router"
    return what, "router" if isinstance(action, m.ReadRouter) else "mx"


class ActionRunner:
    def __init__(self, executor: Executor, *, store: Store, audit: Auditor,
                 publisher: Publisher, deliver: Callable[[m.Event], None]) -> None:
        self.executor = executor
        self.store = store
        self.audit = audit
        self.publisher = publisher
        self.deliver = deliver
        self._tg: asyncio.TaskGroup | None = None
        self._apply: asyncio.Task[None] | None = None   # the router apply in flight
        self._mx: dict[int, tuple[str, asyncio.Task[None]]] = {}   # MX actions by id
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Actions run in the daemon's TaskGroup from now on."""
        self._tg = tg

    def launch(self, action: m.Effect) -> None:
        assert self._tg is not None, "ActionRunner.start() first"
        if isinstance(action, m.AbandonMx):
            self._abandon(action.action_id)
            return
        what, slot = describe(action)
        if self._closed:
            log.info("action not started: the daemon is stopping", action=what)
            return
        self._set_intent(slot, {"what": what, "at": datetime.now(UTC).isoformat()})
        task = self._tg.create_task(self._run(action, what, slot), name=f"action-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if isinstance(action, m.ApplyWan):
            self._apply = task
        elif not isinstance(action, m.ReadRouter):
            self._mx[action.action_id] = (what, task)
            task.add_done_callback(lambda _: self._mx.pop(action.action_id, None))

    def _abandon(self, action_id: int) -> None:
        """The machine moves the router: the MX action in flight is cancelled (its worker
        child killed); it reports nothing more, the machine has forgotten it."""
        what, task = self._mx.pop(action_id, ("", None))
        if task is None or task.done():
            return
        task.cancel()
        self._set_intent("mx", None)
        self.audit.emit(EventKind.ACTION, f"{what}: abandoned, the router moves",
                        detail={"action": what, "ok": False, "abandoned": True})

    def close(self) -> None:
        """The daemon is stopping: no action starts from now on."""
        self._closed = True

    async def grace(self, seconds: float) -> None:
        """Wait up to `seconds` for the router apply in flight, if any."""
        task = self._apply
        if task is None or task.done():
            return
        log.warning("waiting for the router apply in flight before stopping", grace=seconds)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), seconds)

    async def cancel(self, within: float) -> None:
        """Cancel what is still in flight (after the grace); wait at most `within` for it."""
        for task in await cancel_all(self._tasks, within):
            log.error("action did not end when cancelled", task=task.get_name())

    def _set_intent(self, slot: str, intent: dict[str, str] | None) -> None:
        intents = dict(self.store.data.intent or {})
        if intent is None:
            intents.pop(slot, None)
        else:
            intents[slot] = intent
        self.store.data.intent = intents or None
        self.store.save()

    async def _run(self, action: m.Effect, what: str, slot: str) -> None:
        self.audit.emit(EventKind.ACTION, f"{what}: started", detail={"action": what})
        try:
            outcome = await self.executor.run(action)
        except Exception as exc:
            log.exception("action crashed", action=what)
            outcome = _crashed(action, what, exc)
        ok = outcome.event.ok
        self.audit.emit(EventKind.ACTION, outcome.summary,
                        detail={"action": what, "ok": ok, "seconds": round(outcome.seconds, 3),
                                **outcome.detail})
        self.publisher.finished(Finished(action, outcome))
        self._set_intent(slot, None)
        self.deliver(outcome.event)


def _crashed(action: m.Effect, what: str, exc: Exception) -> Outcome:
    failed: m.RouterResult | m.MxResult
    if isinstance(action, m.ApplyWan | m.ReadRouter):
        failed = m.RouterResult(action.action_id, False, detail=f"internal error: {exc!r}")
    else:
        failed = m.MxResult(action.action_id, False, f"internal error: {exc!r}")
    return Outcome(failed, f"{what} crashed: {exc!r}", {}, 0.0)
