"""The probes on their schedules: ICMP rounds to the primary's targets, the tunnel's SMTP probe.

It emits machine events (`PrimaryDown`/`PrimaryUp`, `MailPathChanged`) onto the daemon's
queue and per-target summaries to the publishers. Whether and from where the primary is
probed is the machine's `ProbePlan`, which the supervisor hands over after every step
(`follow`): on the backup circuit the primary is unreachable through the router by
design, so it is not probed unless a failback source is configured (auto mode).

`targets` is the one view of each target that status, MQTT and metrics show: the last
summary, or `paused` while the plan does not probe. A round still in flight when the
plan changes is dropped: it went out over the old path (the backup circuit, once the
router moved) and says nothing about the primary.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import TextIO

import structlog

from . import machine as m
from .config import Config
from .model import Circuit, LinkHealth, ProbeSummary
from .monitor import MailPathMonitor, Monitor
from .probes.icmp import EchoResult, echo_all
from .probes.smtp import smtp_probe
from .publish.fanout import Publisher

log = structlog.get_logger("dslfailover.probes")

Emit = Callable[[m.Event], None]


class ProbeLoop:
    def __init__(self, cfg: Config, monitor: Monitor, emit: Emit, publisher: Publisher) -> None:
        self.cfg = cfg
        self.monitor = monitor
        self.emit = emit
        self.publisher = publisher
        self.plan = m.ProbePlan(True, m.ProbeVia.PRIMARY)
        self.circuit = Circuit.UNKNOWN   # where the router is, for the recorded rounds
        self.targets: dict[str, ProbeSummary] = {}   # the latest view of each target
        self._record: TextIO | None = None
        if cfg.primary.record is not None:
            try:
                # its directory is made like the state_dir (`check` wants the one above)
                cfg.primary.record.parent.mkdir(exist_ok=True)
                self._record = cfg.primary.record.open("a", encoding="utf-8")
            except OSError as exc:
                log.error("cannot record probe rounds", path=str(cfg.primary.record),
                          error=str(exc))

    def follow(self, decision: m.Decision) -> None:
        """The machine decided: probe as it plans, and forget moot evidence."""
        paused = self.plan.probe and not decision.probe.probe
        self.plan = decision.probe
        self.circuit = decision.ctx.circuit
        if decision.reset_monitor:
            self.monitor.reset()
        if paused:
            now = datetime.now(UTC)
            self._show([ProbeSummary.paused_at(t, now) for t in self.monitor.targets])

    def _show(self, summaries: list[ProbeSummary]) -> None:
        for summary in summaries:
            self.targets[summary.name] = summary
            self.publisher.probe(summary)

    def close(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None

    def _source(self) -> IPv4Address | None:
        if self.plan.via == m.ProbeVia.FAILBACK:
            return self.cfg.failback.source
        return self.cfg.primary.source

    async def primary(self, privileged: bool) -> None:
        """Rounds every `primary.interval`; they overlap when timeout > interval."""
        p = self.cfg.primary
        # (the plan it was sent under, when, the round)
        pending: list[tuple[m.ProbePlan, float, asyncio.Task[tuple[EchoResult, ...]]]] = []
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                if self.plan.probe:
                    # each round is its own task; results are observed in the order the
                    # rounds started
                    pending.append((self.plan, time.monotonic(), asyncio.create_task(
                        echo_all(list(p.targets), timeout=p.timeout, privileged=privileged,
                                 source=self._source()))))
                next_at += p.interval
                while (delay := next_at - loop.time()) > 0:
                    if not pending:
                        await asyncio.sleep(delay)
                        break
                    done, _ = await asyncio.wait({pending[0][2]}, timeout=delay)
                    if done:
                        plan, sent, task = pending.pop(0)
                        if plan == self.plan:
                            self.observe(task.result(), sent)
                if next_at < loop.time() - p.interval:
                    next_at = loop.time()  # we fell behind (suspend): do not burst
        finally:
            for _, _, task in pending:
                task.cancel()

    def observe(self, replies: tuple[EchoResult, ...], sent: float | None = None) -> None:
        if self._record is not None:
            self._record_round(replies)
        obs = self.monitor.observe(replies, started=sent, now=time.monotonic())
        for change in obs.changes:
            log.info("target answering" if change.ok else "target not answering",
                     target=change.target, error=change.error)
        self._show(self.monitor.summaries(datetime.now(UTC)))
        if obs.verdict is not None:
            if obs.verdict.link == LinkHealth.DOWN:
                self.emit(m.PrimaryDown(obs.verdict.evidence))
            else:
                self.emit(m.PrimaryUp(obs.verdict.evidence))

    def _record_round(self, replies: tuple[EchoResult, ...]) -> None:
        line = json.dumps({"t": round(time.time(), 3), "circuit": self.circuit.value,
                           "replies": [[r.target, r.ok, r.rtt_ms] for r in replies]})
        try:
            assert self._record is not None
            self._record.write(line + "\n")
            self._record.flush()
        except OSError as exc:
            log.error("cannot record probe rounds; recording stops", error=str(exc))
            self._record = None

    async def tunnel(self) -> None:
        """The SMTP probe through the tunnel, on primary and backup alike."""
        t = self.cfg.tunnel
        assert t is not None
        hysteresis = MailPathMonitor(t.fail_after)
        while True:
            result = await smtp_probe(t.smtp_host, t.smtp_port, timeout=t.timeout,
                                      ehlo_name=t.ehlo_name)
            verdict = hysteresis.observe(result.ok, f"{result.step}: {result.detail}")
            if verdict is not None:
                self.emit(m.MailPathChanged(verdict.ok, verdict.detail))
            await asyncio.sleep(t.interval)
