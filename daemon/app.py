"""The supervisor: one TaskGroup, one shutdown path, the data flow of DESIGN §2.

    probes -> monitor -> machine.step -> executor -> results as events
                             |-> audit (journal, MQTT, metrics), state snapshots

Everything the machine decides is executed here; nothing here decides. Signals (or a
`shutdown` event passed in by tests) end the run: an in-flight router action gets a grace
period to finish (a half-done dialogue is worse than a late exit), then all is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

from router_drivers import RouterDriver, create_driver

from . import machine as m
from .audit import Auditor
from .config import Config, Secrets
from .executor import Executor, MxPort, Outcome, RemoteMx
from .model import (
    Circuit,
    EventKind,
    OperatorCommand,
    RejectedCommand,
    State,
    StateSnapshot,
)
from .monitor import Monitor
from .probes.icmp import choose_privileged, echo_all
from .probes.smtp import smtp_probe
from .publish.sdnotify import Notifier, watchdog_interval
from .store import Store
from .wiring import live_proof, mx_settings, router_settings

log = structlog.get_logger("dslfailover.app")

TICK = 0.25           # how often deadlines (hold-down, retries, trials) are checked
SHUTDOWN_GRACE = 30.0  # bounds waiting for an in-flight router action at shutdown
STARTUP_BROKER_WAIT = 2.0  # bounds waiting for MQTT before the first router read


def machine_config(cfg: Config) -> m.MachineConfig:
    fb, mx = cfg.failback, cfg.backup_mx
    return m.MachineConfig(
        failback_mode=fb.mode, hold_down=fb.hold_down, hold_down_max=fb.hold_down_max,
        flap_window=fb.flap_window, trial_interval=fb.trial_interval,
        trial_check=fb.trial_check, retry_initial=cfg.actions.retry_initial,
        retry_max=cfg.actions.retry_max,
        verify_interval=mx.verify_interval if mx else 300.0,
        mx=mx is not None, repair=bool(mx and mx.repair), flush=bool(mx and mx.flush),
        reflush_after=mx.reflush_after if mx else 0.0)


class Daemon:
    def __init__(self, cfg: Config, secrets: Secrets, *, driver: RouterDriver | None = None,
                 mx: MxPort | None = None, shutdown: asyncio.Event | None = None) -> None:
        self.cfg = cfg
        self.stop = shutdown or asyncio.Event()
        self.driver = driver or create_driver(cfg.router.driver, router_settings(cfg, secrets))
        mxs = mx_settings(cfg)
        self.executor = Executor(
            self.driver, primary=cfg.router.primary.wan(), backup=cfg.router.backup.wan(),
            mx=mx or (RemoteMx(mxs) if mxs else None),
            router_timeout=cfg.router.action_timeout, mx_timeout=cfg.actions.mx_timeout)
        self.store = Store(cfg.state_dir)
        self.audit = Auditor()
        self.events: asyncio.Queue[m.Event] = asyncio.Queue()
        self.monitor = Monitor([str(t) for t in cfg.primary.targets],
                               quorum=cfg.primary.quorum, down_after=cfg.primary.down_after,
                               up_after=cfg.primary.up_after, window=cfg.primary.window)
        self.notifier = Notifier()
        self.ctx: m.Context | None = None
        self.snapshot: StateSnapshot | None = None
        self.since_wall = datetime.now(UTC)
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._router_task: asyncio.Task[None] | None = None
        self._actions: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._failover_started: float | None = None
        self._record: TextIO | None = None
        if cfg.primary.record is not None:
            try:
                self._record = cfg.primary.record.open("a", encoding="utf-8")
            except OSError as exc:
                log.error("cannot record probe rounds", path=str(cfg.primary.record),
                          error=str(exc))
        self.mqtt: Any = None
        self.metrics: Any = None
        self.secrets = secrets

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop.set)
        persisted = self.store.load()
        self.audit.seq = persisted.seq
        self.audit.sinks.append(self._persist_seq)
        privileged = choose_privileged(self.cfg.primary.privileged)
        # the live proof after each apply pings too: built once privileges are known
        self.executor.live_proof = live_proof(self.cfg, privileged)
        self._setup_publishers()
        for slot, intent in (persisted.intent or {}).items():
            self.audit.emit(EventKind.ACTION,
                            f"interrupted before it finished: {intent.get('what')} (started "
                            f"{intent.get('at')}); the router is read to decide where we are",
                            detail={"interrupted": slot, **intent}, level="warning")
        if persisted.intent:
            persisted.intent = None
            self.store.save()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if self.mqtt is not None:
                    tg.create_task(self.mqtt.run(self.stop), name="mqtt")
                tg.create_task(self._optional("control", self._control()), name="control")
                if self.metrics is not None:
                    tg.create_task(self._optional("metrics", self.metrics.serve(
                        self.cfg.metrics.host, self.cfg.metrics.port, self.stop)),
                        name="metrics")
                workers = [
                    tg.create_task(self._probe_primary(privileged), name="probe-primary"),
                    tg.create_task(self._ticker(), name="ticker"),
                    tg.create_task(self._watchdog(), name="watchdog"),
                ]
                if self.cfg.tunnel is not None:
                    workers.append(tg.create_task(self._probe_tunnel(), name="probe-tunnel"))
                # recent failbacks survive a restart, so the flap hold-down does too
                mono, wall = time.monotonic(), time.time()
                history = tuple(mono - (wall - t) for t in persisted.failback_times
                                if 0 <= wall - t <= self.cfg.failback.flap_window)
                first = m.start(machine_config(self.cfg), mono, history)
                self.ctx = first.ctx
                self._publish_state()
                await self._wait_for_broker()
                self._apply(first)
                # only now: events that came in meanwhile apply to the started machine
                workers.append(tg.create_task(self._decide(), name="decide"))
                self.notifier.ready("starting: reading the router")
                await self.stop.wait()
                self.notifier.stopping()
                await self._grace()
                for task in (*workers, *self._actions):
                    task.cancel()
        finally:
            self._tg = None
            if self._record is not None:
                self._record.close()
            self.store.data.seq = self.audit.seq
            self.store.save()
            log.info("stopped")

    async def _wait_for_broker(self) -> None:
        """At start only: give MQTT a moment so that dashboards see `starting` too.

        Bounded by STARTUP_BROKER_WAIT; nothing has been decided yet, and the monitor is
        already probing, so this never delays a failover.
        """
        if self.mqtt is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STARTUP_BROKER_WAIT):
                while not self.mqtt.connected:  # noqa: ASYNC110 (a property, no event)
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)  # the sender publishes the state first

    async def _grace(self) -> None:
        task = self._router_task
        if task is not None and not task.done():
            log.warning("waiting for the router action in flight before stopping",
                        grace=SHUTDOWN_GRACE)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_GRACE)

    async def _optional(self, what: str, coro: Any) -> None:
        """A helper service that fails (socket in use, port taken) is logged, not fatal."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(f"{what} unavailable; running without it", error=str(exc))

    def _setup_publishers(self) -> None:
        if self.cfg.mqtt.enabled:
            from .publish.mqtt import MqttPublisher

            self.mqtt = MqttPublisher(self.cfg.mqtt, prefix=self.cfg.mqtt_prefix,
                                      site=self.cfg.site, password=self.secrets.mqtt_password,
                                      on_command=self._on_mqtt_command)
            self.audit.sinks.append(self.mqtt.publish_event)
        if self.cfg.metrics.enabled:
            from .publish.metrics import Metrics

            self.metrics = Metrics(self.cfg.site)

    async def _control(self) -> None:
        from .control.server import ControlServer

        server = ControlServer(self.cfg.control.socket, group=self.cfg.control.group,
                               status=self.status, submit=self.submit,
                               audit_rejected=self._rejected)
        await server.serve(self.stop)

    # -- the decision loop -----------------------------------------------------------

    async def _decide(self) -> None:
        while True:
            event = await self.events.get()
            assert self.ctx is not None
            decision = m.step(self.ctx, event, time.monotonic())
            self._apply(decision, event)

    def _apply(self, d: m.Decision, event: m.Event | None = None) -> None:
        before = self.ctx
        self.ctx = d.ctx
        # a probe alarm is the cause of the transition it comes with: it goes first
        alarms = [n for n in d.notes if n.kind == "probe_alarm"]
        for note in alarms:
            self.audit.emit(EventKind.PROBE_ALARM, note.reason, detail=dict(note.detail))
        for t in d.transitions:
            self.since_wall = datetime.now(UTC)
            self._on_transition(t)
        for note in d.notes:
            if note.kind != "probe_alarm":
                self.audit.emit(EventKind(note.kind), note.reason, detail=dict(note.detail))
        if isinstance(event, m.Command):
            self._answer(event, d)
        if before is None or d.transitions or _health(before) != _health(d.ctx):
            self._publish_state()
        for action in d.actions:
            self._launch(action)

    def _on_transition(self, t: m.Transition) -> None:
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
        if t.to_state == State.BACKUP and self._failover_started is not None:
            took = time.monotonic() - self._failover_started
            self._failover_started = None
            if self.metrics is not None:
                self.metrics.failover_duration(took)
        if self.metrics is not None:
            self.metrics.count_transition(t.from_state, t.to_state, reason_kind(t.reason))
        if t.to_state in (State.PRIMARY, State.BACKUP) and t.from_state in (
                State.FAILING_OVER, State.FAILING_BACK, State.STARTING, State.FAULT):
            # the router moved (or was found): old evidence about the primary is moot
            self.monitor.reset()
        self.store.save()
        self.notifier.status(f"{t.to_state.value}: {t.reason}")

    def _publish_state(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        self.snapshot = StateSnapshot(
            state=ctx.state, circuit=ctx.circuit, primary_link=ctx.primary_link,
            mail_path=ctx.mail_path, since=self.since_wall, reason=ctx.reason,
            seq=self.audit.seq)
        if self.mqtt is not None:
            self.mqtt.publish_state(self.snapshot)
        if self.metrics is not None:
            self.metrics.set_state(self.snapshot)

    def _launch(self, action: m.Effect) -> None:
        assert self._tg is not None
        what = _ACTION_NAMES.get(type(action), type(action).__name__)
        if isinstance(action, m.ApplyWan):
            what = f"{what} {action.circuit.value}"
        # recorded before it starts: a crash mid-action is reported at the next start
        slot = "router" if isinstance(action, m.ApplyWan | m.ReadRouter) else "mx"
        intents = dict(self.store.data.intent or {})
        intents[slot] = {"what": what, "at": datetime.now(UTC).isoformat()}
        self.store.data.intent = intents
        self.store.save()
        task = self._tg.create_task(self._execute(action, what, slot), name=f"action-{what}")
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)
        if isinstance(action, m.ApplyWan | m.ReadRouter):
            self._router_task = task

    async def _execute(self, action: m.Effect, what: str, slot: str) -> None:
        self.audit.emit(EventKind.ACTION, f"{what}: started", detail={"action": what})
        try:
            outcome: Outcome = await self.executor.run(action)
        except Exception as exc:
            # a bug (ours or a library's) in one action must not take the daemon down:
            # it becomes a failed action, so the machine goes to `fault` and retries
            log.exception("action crashed", action=what)
            failed: m.RouterResult | m.MxResult
            if isinstance(action, m.ApplyWan | m.ReadRouter):
                failed = m.RouterResult(action.action_id, False,
                                        detail=f"internal error: {exc!r}")
            else:
                failed = m.MxResult(action.action_id, False, f"internal error: {exc!r}")
            outcome = Outcome(failed, f"{what} crashed: {exc!r}", {}, 0.0)
        ok = outcome.event.ok
        self.audit.emit(EventKind.ACTION, outcome.summary,
                        detail={"action": what, "ok": ok, "seconds": round(outcome.seconds, 3),
                                **outcome.detail},
                        level="info" if ok else "error")
        if self.metrics is not None:
            if isinstance(action, m.ApplyWan):
                self.metrics.router_action(action.circuit.value, ok, outcome.seconds)
            if isinstance(action, m.VerifyMx):
                for check in outcome.detail.get("checks", []):
                    self.metrics.mx_check(check["name"], check["ok"])
        intents = dict(self.store.data.intent or {})
        intents.pop(slot, None)
        self.store.data.intent = intents or None
        self.store.save()
        await self.events.put(outcome.event)

    # -- probes and time -----------------------------------------------------------

    def _probe_source(self) -> tuple[bool, Any]:
        """Whether to probe the primary now, and from which source address."""
        ctx = self.ctx
        on_backup = ctx is not None and (
            ctx.circuit == Circuit.BACKUP or ctx.state in (State.BACKUP, State.FAILING_BACK))
        if not on_backup:
            return True, self.cfg.primary.source
        if self.cfg.failback.mode == "auto":
            # a path to the primary circuit that does not go through the router's WAN
            return True, self.cfg.failback.source
        return False, None  # unreachable through the router by design: not a failure

    async def _probe_primary(self, privileged: bool) -> None:
        p = self.cfg.primary
        pending: list[tuple[float, asyncio.Task[Any]]] = []  # (sent at, round)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                wanted, source = self._probe_source()
                if wanted:
                    # rounds overlap when timeout > interval: each is its own task, and
                    # results are observed in the order the rounds started
                    pending.append((time.monotonic(), asyncio.create_task(echo_all(
                        list(p.targets), timeout=p.timeout, privileged=privileged,
                        source=source))))
                next_at += p.interval
                while (delay := next_at - loop.time()) > 0:
                    if not pending:
                        await asyncio.sleep(delay)
                        break
                    done, _ = await asyncio.wait({pending[0][1]}, timeout=delay)
                    if done:
                        sent, task = pending.pop(0)
                        self._observe(task.result(), sent)
                if next_at < loop.time() - p.interval:
                    next_at = loop.time()  # we fell behind (suspend): do not burst
        finally:
            for _, task in pending:
                task.cancel()

    def _observe(self, replies: Any, sent: float | None = None) -> None:
        if self._record is not None:
            self._record_round(replies)
        obs = self.monitor.observe(replies, started=sent, now=time.monotonic())
        for change in obs.changes:
            log.info("target answering" if change.ok else "target not answering",
                     target=change.target, error=change.error)
        now = datetime.now(UTC)
        for summary in self.monitor.summaries(now):
            if self.mqtt is not None:
                self.mqtt.publish_probe(summary)
            if self.metrics is not None:
                self.metrics.observe_probe(summary)
        if obs.verdict is not None:
            if obs.verdict.link.value == "down":
                self.events.put_nowait(m.PrimaryDown(obs.verdict.evidence))
            else:
                self.events.put_nowait(m.PrimaryUp(obs.verdict.evidence))

    def _record_round(self, replies: Any) -> None:
        line = json.dumps({"t": round(time.time(), 3), "circuit": self.ctx.circuit.value
                           if self.ctx else "unknown",
                           "replies": [[r.target, r.ok, r.rtt_ms] for r in replies]})
        try:
            assert self._record is not None
            self._record.write(line + "\n")
            self._record.flush()
        except OSError as exc:
            log.error("cannot record probe rounds; recording stops", error=str(exc))
            self._record = None

    async def _probe_tunnel(self) -> None:
        t = self.cfg.tunnel
        assert t is not None
        failures = 0
        reported: bool | None = None
        while True:
            result = await smtp_probe(t.smtp_host, t.smtp_port, timeout=t.timeout,
                                      ehlo_name=t.ehlo_name)
            failures = 0 if result.ok else failures + 1
            ok = result.ok if result.ok else (failures < t.fail_after and reported is not False)
            if (result.ok or failures >= t.fail_after) and ok != reported:
                reported = ok
                detail = "" if result.ok else f"{result.step}: {result.detail}"
                self.events.put_nowait(m.MailPathChanged(ok, detail))
            await asyncio.sleep(t.interval)

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

    # -- operators -----------------------------------------------------------------

    def _persist_seq(self, event: Any) -> None:
        self.store.data.seq = event.seq

    def _on_mqtt_command(self, cmd: OperatorCommand | RejectedCommand) -> None:
        if isinstance(cmd, RejectedCommand):
            self._rejected(cmd)
        else:
            self.events.put_nowait(m.Command(cmd))

    def _rejected(self, cmd: RejectedCommand) -> None:
        self.audit.emit(EventKind.COMMAND, f"command rejected from {cmd.source}: {cmd.why}",
                        detail={"source": cmd.source, "excerpt": cmd.excerpt,
                                "accepted": False}, level="warning")

    async def submit(self, cmd: OperatorCommand) -> dict[str, Any]:
        """Hand a command to the machine and wait for its verdict (control socket)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        event = m.Command(cmd)
        self._waiters[id(event)] = fut
        await self.events.put(event)
        try:
            async with asyncio.timeout(5.0):  # bounds the wait for the decision loop
                return await fut
        finally:
            self._waiters.pop(id(event), None)

    def _answer(self, event: m.Command, d: m.Decision) -> None:
        fut = self._waiters.get(id(event))
        if fut is None or fut.done():
            return
        note = next((n for n in d.notes if n.kind == "command"), None)
        accepted = bool(note and note.detail.get("accepted"))
        fut.set_result({"accepted": accepted, "detail": note.reason if note else "",
                        "state": d.ctx.state.value})

    def status(self) -> dict[str, Any]:
        snap = self.snapshot.as_dict() if self.snapshot else {"state": "starting"}
        ctx = self.ctx
        targets = {}
        for t in self.monitor.targets:
            loss, rtt = self.monitor.stats(t)
            targets[t] = {"loss": round(loss, 3), "rtt_ms": rtt}
        return {
            **snap,
            "site": self.cfg.site,
            "router_action": ctx.router_job_kind if ctx else None,
            "mx_action": ctx.mx_job_kind if ctx else None,
            "hold_down": m.hold_down(ctx, time.monotonic()) if ctx else None,
            "retry_in": max(0.0, ctx.retry_at - time.monotonic())
            if ctx and ctx.retry_at else None,
            "targets": targets,
            "mqtt": {"connected": bool(self.mqtt and self.mqtt.connected)},
            "counters": {"failovers": self.store.data.failovers,
                         "failbacks": self.store.data.failbacks},
            "events": [e.as_dict() for e in self.audit.recent[-10:]],
        }


_ACTION_NAMES: dict[type[Any], str] = {
    m.ReadRouter: "read router", m.ApplyWan: "apply", m.VerifyMx: "verify backup MX",
    m.RepairMx: "repair backup MX", m.FlushMx: "flush backup MX queue",
}


def reason_kind(reason: str) -> str:
    """A small fixed vocabulary for metrics labels (reasons carry pids, counts, text)."""
    for prefix, kind in (("primary down", "primary_down"), ("trial", "trial"),
                         ("retry", "retry"), ("router", "router"), ("cannot read", "router"),
                         ("failover failed", "action_failed"),
                         ("failback failed", "action_failed"), ("primary up", "primary_up")):
        if reason.startswith(prefix):
            return kind
    if " by " in reason.split(":")[0]:
        return "operator"
    return "other"


def _health(ctx: m.Context) -> tuple[Any, ...]:
    return (ctx.state, ctx.circuit, ctx.primary_link, ctx.mail_path, ctx.reason)


async def run_daemon(cfg: Config, secrets: Secrets) -> None:
    await Daemon(cfg, secrets).run()

