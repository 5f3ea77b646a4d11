"""The probes on their schedules: ICMP rounds to the primary's targets and, while the
router is on it, to the backup circuit's; the tunnel's SMTP probe; the DNS checks.

It emits machine events (`PrimaryDown`/`PrimaryUp`, `BackupDown`/`BackupUp`,
`MailPathChanged`, `DnsChecked`) onto the daemon's queue and per-target summaries of the
primary's targets to the publishers. What is probed, and from where, is the machine's
`ProbePlan`, which the supervisor hands over after every step (`follow`): on the backup
circuit the primary is unreachable through the router by design, so it is not probed
unless a failback source is configured (auto mode); the backup circuit is probed only
while the router is on it; the DNS checks run only on `primary`.

`targets` is the one view of each target that status, MQTT and metrics show: the last
summary, or `paused` while the plan does not probe. A round still in flight when the
plan changes is dropped: it went out over the old path (the backup circuit, once the
router moved) and says nothing about the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, TextIO

import structlog

from . import machine as m
from .config import Config
from .model import Circuit, DnsHealth, LinkHealth, ProbeSummary
from .monitor import MailPathMonitor, Monitor
from .probes.icmp import EchoResult, echo_all
from .probes.smtp import smtp_probe
from .publish.fanout import Publisher
from .wiring import backup_targets

if TYPE_CHECKING:
    from .dns_checks import DnsReport

log = structlog.get_logger("dslfailover.probes")

Emit = Callable[[m.Event], None]
# Bounds one run of the DNS checks beyond the lookups' own `[dns] timeout` (each lookup
# tries every name server within it; a run makes two rounds of lookups).
DNS_RUN_SLACK = 2.0


class ProbeLoop:
    def __init__(self, cfg: Config, monitor: Monitor, emit: Emit, publisher: Publisher) -> None:
        self.cfg = cfg
        self.monitor = monitor
        self.emit = emit
        self.publisher = publisher
        self.plan = m.ProbePlan(True, m.ProbeVia.PRIMARY)
        self.circuit = Circuit.UNKNOWN   # where the router is, for the recorded rounds
        self.targets: dict[str, ProbeSummary] = {}   # the latest view of each target
        p = cfg.primary
        far = backup_targets(cfg)
        # the backup circuit's own monitor, on the primary's thresholds; its rounds of
        # one stay on the backup circuit carry its `epoch`, so a stay's old rounds are
        # dropped after the router left and came back
        self.backup = Monitor([str(t) for t in far], quorum=min(p.quorum, len(far) or 1),
                              down_after=p.down_after, up_after=p.up_after,
                              window=p.window) if far else None
        self._backup_targets = list(far)
        self._backup_epoch = 0
        self.dns_report: DnsReport | None = None   # the last run of the DNS checks
        self._plan_changed = asyncio.Event()
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
        if decision.probe.backup and not self.plan.backup and self.backup is not None:
            self._backup_epoch += 1
            self.backup.reset()   # a new stay on the backup circuit
        if decision.probe != self.plan:
            self._plan_changed.set()
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
        """Rounds to the primary's targets while the plan probes it."""
        await self._rounds(list(self.cfg.primary.targets), privileged, self._primary_key,
                           self._source, self.observe)

    def _primary_key(self) -> Hashable | None:
        # a round sent under another path (via) says nothing about the primary now
        return (self.plan.via,) if self.plan.probe else None

    async def backup_circuit(self, privileged: bool) -> None:
        """Rounds to the backup circuit's far targets, through the router, while it is
        on the backup circuit (the [primary] source: the same path out)."""
        if self.backup is None:
            return
        await self._rounds(self._backup_targets, privileged, self._backup_key,
                           lambda: self.cfg.primary.source, self.observe_backup)

    def _backup_key(self) -> Hashable | None:
        return self._backup_epoch if self.plan.backup else None

    async def _rounds(self, targets: Sequence[IPv4Address], privileged: bool,
                      key: Callable[[], Hashable | None],
                      source: Callable[[], IPv4Address | None],
                      observe: Callable[[tuple[EchoResult, ...], float], None]) -> None:
        """Rounds every `primary.interval` while `key()` is not None; they overlap when
        timeout > interval. A round is observed only while `key()` is what it was sent
        under, in the order the rounds started."""
        p = self.cfg.primary
        # (the key it was sent under, when, the round)
        pending: list[tuple[Hashable, float, asyncio.Task[tuple[EchoResult, ...]]]] = []
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                if (sent_under := key()) is not None:
                    pending.append((sent_under, time.monotonic(), asyncio.create_task(
                        echo_all(list(targets), timeout=p.timeout, privileged=privileged,
                                 source=source()))))
                next_at += p.interval
                while (delay := next_at - loop.time()) > 0:
                    if not pending:
                        await asyncio.sleep(delay)
                        break
                    done, _ = await asyncio.wait({pending[0][2]}, timeout=delay)
                    if done:
                        under, sent, task = pending.pop(0)
                        if under == key():
                            observe(task.result(), sent)
                if next_at < loop.time() - p.interval:
                    next_at = loop.time()  # we fell behind (suspend): do not burst
        finally:
            for _, _, task in pending:
                task.cancel()

    def observe_backup(self, replies: tuple[EchoResult, ...], sent: float) -> None:
        assert self.backup is not None
        obs = self.backup.observe(replies, started=sent, now=time.monotonic())
        if obs.verdict is not None:
            evidence = {**obs.verdict.evidence, "circuit": "backup"}
            if obs.verdict.link == LinkHealth.DOWN:
                self.emit(m.BackupDown(evidence))
            else:
                self.emit(m.BackupUp(evidence))

    def observe(self, replies: tuple[EchoResult, ...], sent: float | None = None) -> None:
        """One round to the primary's targets: the monitor's view, logged, published."""
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

    async def dns(self) -> None:
        """The `[dns]` checks: at once on `primary`, then every `[dns] interval` while on
        it (the schedule goes on across a stay elsewhere)."""
        from .probes.dns import DnsSettings, check_dns  # dnspython: only with [dns]

        settings = DnsSettings.from_config(self.cfg)
        assert settings is not None and self.cfg.dns is not None
        interval, last = self.cfg.dns.interval, None
        while True:
            wait = None if not self.plan.dns else (
                0.0 if last is None else last + interval - time.monotonic())
            if wait is None or wait > 0:
                self._plan_changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._plan_changed.wait()
                continue
            try:
                async with asyncio.timeout(2 * settings.timeout + DNS_RUN_SLACK):
                    report = await check_dns(settings)
            except TimeoutError:
                log.warning("DNS checks did not end in time", bound=2 * settings.timeout
                            + DNS_RUN_SLACK)
                last, self.dns_report = time.monotonic(), None
                self.emit(m.DnsChecked(DnsHealth.UNKNOWN, "the DNS checks did not end "
                                       "in time"))
                continue
            last = time.monotonic()
            self.dns_report = report
            self.emit(m.DnsChecked(report.health, report.summary(), report.as_dict()))
