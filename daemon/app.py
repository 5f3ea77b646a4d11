"""The supervisor: one TaskGroup, one event queue, the step loop, one shutdown path.

    ProbeLoop ──events──▶ queue ──▶ machine.step ──▶ Decision
        ▲                                 │  transitions, notes ──▶ Auditor ──▶ FanOut
        └── probe plan, monitor reset ◀───┤  actions ──▶ ActionRunner ──▶ executor
                                          │                   └── results ──▶ queue
    Operators (socket, MQTT) ──commands──▶ queue;  verdicts ◀── answer

The machine decides; the supervisor carries out its decision and keeps the record: the
audit trail, the persisted history, the state snapshot.

One shutdown path (README "Stopping"): a signal (or the `shutdown` event passed in by
tests) sets `stop`, even one that came before the loop existed (daemon/stopping.py). Then
no action starts, the probes and the ticker end, and a router apply in flight may finish
within the grace, `router.action_timeout`: its own bound, restart wait included, so the
router's saved and running config agree afterwards. Then whatever is left is cancelled,
MQTT says `offline`, and the helpers (MQTT, control socket, metrics) get HELPERS_STOP to
end by themselves before they are cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from router_drivers import RouterDriver, create_driver

from . import machine as m
from . import stopping
from .actions import ActionRunner
from .audit import Auditor
from .config import Config, Secrets
from .executor import Executor, MxPort, RemoteMx
from .model import EventKind, OperatorCommand, State, StateSnapshot
from .monitor import Monitor
from .operators import Operators
from .probe_loop import ProbeLoop
from .probes.icmp import choose_privileged
from .publish.attach import Attached, attach
from .publish.fanout import FanOut
from .publish.sdnotify import Notifier, watchdog_interval
from .store import Store
from .wiring import live_proof, mx_settings, router_settings

log = structlog.get_logger("dslfailover.app")

TICK = 0.25           # how often deadlines (hold-down, retries, trials) are checked
STARTUP_BROKER_WAIT = 2.0  # bounds waiting for MQTT before the first router read
# Bounds the helpers' own stop once the grace is over: MQTT's goodbye (`offline`, then
# DISCONNECT: publish.mqtt.GOODBYE_TIMEOUT), the control socket and metrics servers closing.
# Whichever has not ended by then is cancelled.
HELPERS_STOP = 3.0
# Bounds the wait for cancelled tasks to end (a cancel is repeated: stopping.CANCEL_AGAIN).
CANCEL_WITHIN = 1.0
BROKER_POLL = 0.02         # how often that wait looks at the connection
FIRST_STATE_SETTLE = 0.1   # lets the MQTT sender publish `starting` before anything else


class Daemon:
    def __init__(self, cfg: Config, secrets: Secrets, *, driver: RouterDriver | None = None,
                 mx: MxPort | None = None, shutdown: asyncio.Event | None = None) -> None:
        self.cfg = cfg
        self.secrets = secrets
        self.stop = shutdown or asyncio.Event()
        # MQTT says goodbye once the grace is over: the last apply's outcome goes out first
        self._quiet = asyncio.Event()
        # a router apply in flight at shutdown may finish within its own bound
        self.grace = cfg.router.action_timeout
        self.events: asyncio.Queue[m.Event] = asyncio.Queue()
        self.store = Store(cfg.state_dir)
        self.audit = Auditor()
        self.publisher = FanOut()
        self.notifier = Notifier()
        self.monitor = Monitor([str(t) for t in cfg.primary.targets],
                               quorum=cfg.primary.quorum, down_after=cfg.primary.down_after,
                               up_after=cfg.primary.up_after, window=cfg.primary.window)
        self.driver = driver or create_driver(cfg.router.driver, router_settings(cfg, secrets))
        mxs = mx_settings(cfg)
        self.executor = Executor(
            self.driver, primary=cfg.router.primary.wan(), backup=cfg.router.backup.wan(),
            mx=mx or (RemoteMx(mxs) if mxs else None),
            router_timeout=cfg.router.action_timeout, mx_timeout=cfg.actions.mx_timeout)
        self.probes = ProbeLoop(cfg, self.monitor, self.events.put_nowait, self.publisher)
        self.actions = ActionRunner(self.executor, store=self.store, audit=self.audit,
                                    publisher=self.publisher, deliver=self.events.put_nowait)
        self.operators = Operators(site=cfg.site, deliver=self.events.put_nowait,
                                   audit=self.audit, store=self.store,
                                   targets=self.probes.targets,
                                   connected=lambda: self.publisher.connected)
        self.ctx: m.Context | None = None
        self.snapshot: StateSnapshot | None = None
        self.since_wall = datetime.now(UTC)
        self._failover_started: float | None = None
        # MQTT, metrics and notices when configured: their loops are ours
        self.out = Attached()

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        stopping.take_over(asyncio.get_running_loop(), self.stop.set)
        if self.stop.is_set():
            log.info("stopped before it started")   # nothing started, nothing to save
            return
        persisted = self.store.load()
        self.audit.seq = persisted.seq
        self.audit.persist = self._persist_seq
        self.audit.sinks.append(self.publisher.event)
        privileged = choose_privileged(self.cfg.primary.privileged)
        # the live proof after each apply pings too: built once privileges are known
        self.executor.live_proof = live_proof(self.cfg, privileged)
        self.out = attach(self.publisher, self.cfg, self.secrets,
                          on_command=self.operators.on_mqtt_command)
        self._report_interrupted()
        try:
            async with asyncio.TaskGroup() as tg:
                self.actions.start(tg)
                helpers = [tg.create_task(self._optional(
                    "control unavailable; running without it", self._control()), name="control")]
                if self.out.mqtt is not None:
                    helpers.append(tg.create_task(self.out.mqtt.run(self._quiet), name="mqtt"))
                if self.out.notices is not None:
                    helpers.append(tg.create_task(self.out.notices.run(self._quiet),
                                                  name="notify"))
                if self.out.metrics is not None:
                    helpers.append(tg.create_task(self._optional(
                        "metrics unavailable; running without it", self.out.metrics.serve(
                        self.cfg.metrics.host, self.cfg.metrics.port, self.stop)),
                        name="metrics"))
                workers = [
                    tg.create_task(self.probes.primary(privileged), name="probe-primary"),
                    tg.create_task(self.probes.backup_circuit(privileged), name="probe-backup"),
                    tg.create_task(self._ticker(), name="ticker"),
                ]
                if self.cfg.dns is not None:
                    workers.append(tg.create_task(self.probes.dns(), name="dns-checks"))
                # pinged through the grace too: the loop still works
                watchdog = tg.create_task(self._watchdog(), name="watchdog")
                if self.cfg.tunnel is not None:
                    workers.append(tg.create_task(self.probes.tunnel(), name="probe-tunnel"))
                first = m.start(m.machine_config(self.cfg), time.monotonic(),
                                self._failback_history())
                self.ctx = first.ctx
                self._publish_state()
                await self._wait_for_broker()
                if not self.stop.is_set():   # a stop during start-up reads no router
                    self._apply(first)
                # only now: events that came in meanwhile apply to the started machine
                decide = tg.create_task(self._decide(), name="decide")
                self.notifier.ready("starting: reading the router")
                await self.stop.wait()
                await self._shut_down(workers, [decide, watchdog], helpers)
        finally:
            self.probes.close()
            self.store.data.seq = self.audit.seq
            self.store.save()
            log.info("stopped")

    async def _shut_down(self, workers: list[asyncio.Task[None]],
                         after_grace: list[asyncio.Task[None]],
                         helpers: list[asyncio.Task[None]]) -> None:
        """The one shutdown path, each part bounded (see the module docstring)."""
        self.notifier.stopping()
        self.operators.stopping(self.ctx.state.value if self.ctx else "starting")
        self.actions.close()
        # no new evidence, no deadlines: nothing new to do
        await self._cancel(workers)
        # the machine still hears how the apply in flight ends, and publishes it
        await self.actions.grace(self.grace)
        await self._cancel(after_grace)
        while not self.events.empty():   # the apply's outcome: recorded and published
            self._step(self.events.get_nowait())
        await self.actions.cancel(CANCEL_WITHIN)
        self._quiet.set()
        _, late = await asyncio.wait(helpers, timeout=HELPERS_STOP)
        for task in late:
            log.error("did not stop in time; cancelled", task=task.get_name(),
                      bound=HELPERS_STOP)
        await self._cancel(late)

    async def _cancel(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        for task in await stopping.cancel_all(tasks, CANCEL_WITHIN):
            log.error("did not end when cancelled", task=task.get_name(), bound=CANCEL_WITHIN)

    def _report_interrupted(self) -> None:
        """An intent left in the store means we died mid-action: say so, then forget it."""
        data = self.store.data
        for slot, intent in (data.intent or {}).items():
            self.audit.emit(EventKind.ACTION,
                            f"interrupted before it finished: {intent.get('what')} (started "
                            f"{intent.get('at')}); the router is read to decide where we are",
                            detail={"interrupted": slot, **intent})
        if data.intent:
            data.intent = None
            self.store.save()

    def _failback_history(self) -> tuple[float, ...]:
        """Recent failbacks on the monotonic clock: the flap hold-down survives a restart."""
        mono, wall = time.monotonic(), time.time()
        return tuple(mono - (wall - t) for t in self.store.data.failback_times
                     if 0 <= wall - t <= self.cfg.failback.flap_window)

    async def _wait_for_broker(self) -> None:
        """At start only: give MQTT a moment so that dashboards see `starting` too.

        Bounded by STARTUP_BROKER_WAIT; nothing has been decided yet, and the monitor is
        already probing, so this never delays a failover.
        """
        if self.out.mqtt is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STARTUP_BROKER_WAIT):
                # a property, no event; a stop during start-up does not wait for the broker
                while not (self.publisher.connected or self.stop.is_set()):  # noqa: ASYNC110
                    await asyncio.sleep(BROKER_POLL)
                if not self.stop.is_set():
                    await asyncio.sleep(FIRST_STATE_SETTLE)

    async def _optional(self, unavailable: str, coro: Coroutine[Any, Any, None]) -> None:
        """A helper service that fails (socket in use, port taken) is logged, not fatal."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(unavailable, error=str(exc))

    async def _control(self) -> None:
        from .control.server import ControlServer

        server = ControlServer(self.cfg.control.socket, group=self.cfg.control.group,
                               status=self.status, submit=self.submit,
                               audit_rejected=self.operators.rejected)
        await server.serve(self.stop)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self.events.put_nowait(m.Tick())

    async def _watchdog(self) -> None:
        interval = watchdog_interval()
        if interval is None:
            return
        # pinged from the event loop itself: a stuck loop stops the pings and systemd
        # restarts us
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    # -- the step loop ---------------------------------------------------------------

    async def _decide(self) -> None:
        while True:
            self._step(await self.events.get())

    def _step(self, event: m.Event) -> None:
        assert self.ctx is not None
        self._apply(m.step(self.ctx, event, time.monotonic()), event)

    def _apply(self, d: m.Decision, event: m.Event | None = None) -> None:
        before = self.ctx
        self.ctx = d.ctx
        self.probes.follow(d)
        # a probe alarm is the cause of the transition it comes with: it goes first
        alarms = [n for n in d.notes if n.kind == EventKind.PROBE_ALARM]
        for note in alarms:
            self.audit.emit(note.kind, note.reason, detail=dict(note.detail))
        for t in d.transitions:
            self._record_transition(t)
        for note in d.notes:
            if note not in alarms:
                self.audit.emit(note.kind, note.reason, detail=dict(note.detail))
        if isinstance(event, m.Command):
            self.operators.answer(event, d)
        if event is not None:
            self.operators.follow(event, d)
        if before is None or d.transitions or _health(before) != _health(d.ctx):
            self._publish_state()
        for action in d.actions:
            self.actions.launch(action)

    def _record_transition(self, t: m.Transition) -> None:
        self.since_wall = datetime.now(UTC)
        self.audit.emit(EventKind.TRANSITION, t.reason, from_state=t.from_state,
                        to_state=t.to_state, detail=dict(t.evidence))
        data = self.store.data
        data.last_state, data.last_reason = t.to_state.value, t.reason
        data.last_at = self.since_wall.isoformat()
        if t.to_state == State.FAILING_OVER:
            data.failovers += 1
            self._failover_started = time.monotonic()
        if t.from_state == State.FAILING_BACK and t.to_state == State.PRIMARY:
            data.failbacks += 1
            now = time.time()
            data.failback_times = [x for x in data.failback_times
                                   if now - x <= self.cfg.failback.flap_window] + [now]
        took = None
        if t.to_state == State.BACKUP and self._failover_started is not None:
            took = time.monotonic() - self._failover_started
            self._failover_started = None
        self.publisher.transition(t, took)
        self.store.save()
        self.notifier.status(f"{t.to_state.value}: {t.reason}")

    def _publish_state(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        self.snapshot = StateSnapshot(
            state=ctx.state, circuit=ctx.circuit, primary_link=ctx.primary_link,
            mail_path=ctx.mail_path, since=self.since_wall, reason=ctx.reason,
            seq=self.audit.seq, dns=ctx.dns, backup_link=ctx.backup_link)
        self.publisher.state(self.snapshot)

    # -- the operator API (control socket) --------------------------------------------

    def _persist_seq(self, seq: int) -> None:
        """On disk before the event is logged or published: a kill -9 right after it
        must not make the next start number its events with a seq already used."""
        self.store.data.seq = seq
        self.store.save()

    async def submit(self, cmd: OperatorCommand, wait: float | None = None) -> dict[str, Any]:
        return await self.operators.submit(cmd, wait)

    def status(self) -> dict[str, Any]:
        return self.operators.status(self.ctx, self.snapshot)


def _health(ctx: m.Context) -> tuple[Any, ...]:
    return (ctx.state, ctx.circuit, ctx.primary_link, ctx.mail_path, ctx.reason, ctx.dns,
            ctx.backup_link)
