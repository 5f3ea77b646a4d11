"""The chaos soak in a running lab: the daemon started, a real MQTT subscriber
(mqttlog.py) following its topics, the seeded faults of chaos.py injected one after the
other, the watchers of chaos_watch.py checking all along, and at the end the checks that
need the whole run (every mail at our sink, `seq` over the journal and MQTT), as one
JSON-ready report.

    async with running_lab(router_restart=2.0) as lab:
        report = await ChaosRun(lab, ChaosOptions(seed=1, minutes=3)).run()
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..control import ControlError
from .chaos import (
    KINDS,
    Episode,
    Fault,
    FaultKind,
    Violation,
    by_kind,
    check_seq,
    mqtt_events,
    resources_report,
    schedule,
    tally,
)
from .chaos_watch import SAMPLE, Watch, circuit_of
from .netns import LabError
from .poll import poll
from .runner import DaemonInLab, JsonLinesTail, epoch
from .site import Lab

MQTT_LOG = "mqtt.jsonl"         # in the lab dir: what the subscriber received
# Bounds the subscriber's start (spawn -> subscribed to the lab's broker).
SUBSCRIBE_TIMEOUT = 10.0
# Bounds the daemon's exit after SIGTERM: its grace for a router action in flight (30 s)
# and a little more.
TERM_TIMEOUT = 40.0
# Bounds the exit of a daemon that got SIGKILL (the kernel's part only).
KILL_TIMEOUT = 5.0
# Bounds, after a fault is cleared, the wait for the daemon to be on the primary again
# with the link up and the router idle (a failback needs up_after rounds and a restart),
# beyond three of the router's restarts.
SETTLE_TIMEOUT = 60.0
# Settled means settled this long: more than a probe round and its timeout, so that a
# down verdict on the last failed round of a fault is seen.
SETTLE_QUIET = 2.0
# While settling on the backup with the primary back: ask for a failback this often.
FAILBACK_EVERY = 10.0
# At the end: how long the mails sent get to arrive at our sink.
MAIL_DEADLINE = 90.0
# The daemon in the soak: failed actions retried soon, so faults do not pile up waits.
DAEMON_OVERRIDES = {"actions": {"retry_initial": 2, "retry_max": 10}}
INVARIANTS = (
    "router_config_is_a_wan", "saved_equals_running_after_action",
    "one_router_dialogue_at_a_time", "state_agrees_after_start", "state_agrees_within_5s",
    "journal_seq_increasing", "mqtt_seq_increasing", "mqtt_no_gap", "mqtt_no_gap_at_kill9",
    "mqtt_matches_journal", "mail_delivered", "mail_not_bounced",
    "daemon_never_exits_unasked", "sigterm_exits_0")


@dataclass(frozen=True)
class ChaosOptions:
    seed: int
    minutes: float
    kinds: tuple[FaultKind, ...] = KINDS


class ChaosRun:
    def __init__(self, lab: Lab, options: ChaosOptions, *,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        self.lab = lab
        self.opt = options
        self.progress = progress
        self.daemon = DaemonInLab(lab, overrides=DAEMON_OVERRIDES)
        self.prefix = f"dslfailover/lab-{lab.lab_id}"
        self.t0 = time.time()
        self.violations: list[Violation] = []
        self.episodes: list[Episode] = []
        self.kills: list[float] = []       # epoch of every SIGKILL
        self.terms: list[dict[str, Any]] = []
        self.current = "start"              # the fault in progress, for the violations
        self.settle_timeout = SETTLE_TIMEOUT + 3 * lab.router_restart
        self.watch = Watch(lab, self.daemon, JsonLinesTail(lab.dir / MQTT_LOG), self.prefix,
                           self._violate)

    def _violate(self, invariant: str, detail: dict[str, Any]) -> None:
        v = Violation(invariant, time.time() - self.t0, {"during": self.current, **detail})
        self.violations.append(v)
        self.progress(f"VIOLATION {v.as_dict()}")

    async def run(self) -> dict[str, Any]:
        await self._subscribe()
        await self.watch.start_daemon()
        async with asyncio.TaskGroup() as tg:
            sampler = tg.create_task(self.watch.sample_forever(self.progress), name="chaos-sample")
            await self._settle()
            mailer = tg.create_task(self.watch.mail_forever(), name="chaos-mail")
            end = self.t0 + self.opt.minutes * 60
            for fault in schedule(self.opt.seed, router_restart=self.lab.router_restart,
                                  kinds=self.opt.kinds):
                if time.time() >= end:
                    break
                await self._episode(fault)
            mailer.cancel()
            await self._finish()
            sampler.cancel()
        await self.watch.close()
        return self.report()

    async def _subscribe(self) -> None:
        out = self.lab.dir / MQTT_LOG
        await self.lab.spawn("inside", [
            sys.executable, "-m", "daemon.lab.mqttlog", "--topic", f"{self.prefix}/#",
            "--out", str(out)], name="mqttlog")
        if not await poll(lambda: any(ln.get("link") == "up" for ln in self.watch.read_mqtt()),
                          SUBSCRIBE_TIMEOUT):
            raise LabError(f"the MQTT subscriber did not subscribe within "
                           f"{SUBSCRIBE_TIMEOUT:g}s")

    # -- one fault ------------------------------------------------------------------------

    async def _episode(self, fault: Fault) -> None:
        ep = Episode(fault, time.time() - self.t0)
        self.episodes.append(ep)
        self.current, self.watch.quiet = fault.kind, False
        self.progress(f"fault {len(self.episodes)}: {fault.as_dict()}")
        self.daemon.read()
        first, started = len(self.daemon.events), time.time()
        try:
            await self._inject(fault, ep)
        except (LabError, ControlError) as exc:
            ep.notes.append(f"injecting: {type(exc).__name__}: {exc}"[:300])
        finally:
            await self.lab.restore()
        cleared = time.time()
        ep.settled = await self._settle()
        ep.settle_s = time.time() - cleared if ep.settled else None
        self.daemon.read()
        ep.transitions = [
            f"{e.get('state_from')}->{e.get('state_to')} @ +{(at or started) - started:.1f}s"
            for e in self.daemon.events[first:] if e.get("event_kind") == "transition"
            for at in [epoch(e.get("timestamp"))]]
        ep.final_state = self.watch.status.get("state")
        took = "-" if ep.settle_s is None else f"{ep.settle_s:.1f}s"
        self.progress(f"  settled {ep.settled} in {took}; {ep.transitions} {ep.notes or ''}")
        self.current, self.watch.quiet = "gap", ep.settled
        await asyncio.sleep(fault.gap)

    async def _inject(self, f: Fault, ep: Episode) -> None:
        lab, hold = self.lab, f.hold
        if f.kind == "cut":
            await lab.cut()
            await asyncio.sleep(hold)
        elif f.kind == "flap":
            await lab.flap(f.times, f.down, f.up)
        elif f.kind in ("loss_burst", "random_loss"):
            await lab.set_loss(f.percent)
            await asyncio.sleep(hold)
            await lab.set_loss(0)
        elif f.kind == "one_way_loss":
            await lab.set_reply_loss(f.percent)
            await asyncio.sleep(hold)
            await lab.set_reply_loss(0)
        elif f.kind in ("router_hang", "router_refuse"):
            await self._router_fault(f.kind, True)
            await lab.cut()
            await asyncio.sleep(hold)
            await self._router_fault(f.kind, False)
        elif f.kind == "router_slow_restart":
            await self._slow_restart(f, ep)
        elif f.kind == "sshd_down":
            await lab.set_service("sshd", False)
            if f.with_cut:
                await lab.cut()
            await asyncio.sleep(hold)
            await lab.set_service("sshd", True)
        elif f.kind == "broker_restart":
            await lab.set_service("broker", False)
            await asyncio.sleep(hold)
            await lab.set_service("broker", True)
        else:
            await self._signal_daemon(f)
        if f.with_cut and not await self._until("backup"):
            ep.notes.append(f"not on backup within {self.settle_timeout:g}s of the end of "
                            "the fault, the primary still cut")

    async def _router_fault(self, kind: FaultKind, on: bool) -> None:
        if kind == "router_hang":
            await self.lab.router_fault(hang=on)
        else:
            await self.lab.router_fault(refuse=on)

    async def _slow_restart(self, f: Fault, ep: Episode) -> None:
        usual = self.lab.router_restart
        await self.lab.router_fault(restart_delay=usual * 3)
        await self.lab.cut()
        # the restart in progress keeps the delay it started with: put it back once away
        away = await poll(lambda: bool(self.watch.router.get("restarting")), f.hold)
        await self.lab.router_fault(restart_delay=usual)
        if not away:
            ep.notes.append(f"the router did not restart within {f.hold:.1f}s")

    async def _signal_daemon(self, f: Fault) -> None:
        if f.with_cut:
            await self.lab.cut()
            await asyncio.sleep(f.delay)
        state = self.watch.status.get("state")   # before the signal: after, none is read
        self.watch.expect_running = False
        if f.kind == "daemon_kill":
            self.kills.append(time.time())
            await self.daemon.send_signal(signal.SIGKILL, KILL_TIMEOUT)
        else:
            status, took = await self.daemon.send_signal(signal.SIGTERM, TERM_TIMEOUT)
            self.terms.append({"exit_status": status, "took_s": round(took, 2),
                               "during": state})
            if status != 0:
                self._violate("sigterm_exits_0", self.terms[-1])
        await asyncio.sleep(f.hold)
        await self.watch.start_daemon()

    async def _until(self, state: str) -> bool:
        return await poll(lambda: self.watch.status.get("state") == state,
                          self.settle_timeout, step=SAMPLE)

    async def _settle(self) -> bool:
        """On the primary with the link up, no router action, the router idle, for
        SETTLE_QUIET seconds of samples taken after the call (a verdict may still come
        after a fault is cleared); a failback asked for now and then while on the backup."""
        deadline, asked = time.time() + self.settle_timeout, 0.0
        first, since = self.watch.samples + 1, None
        while time.time() < deadline:
            s, r = self.watch.status, self.watch.router
            if (self.watch.samples >= first and s.get("state") == "primary"
                    and s.get("primary_link") == "up" and s.get("router_action") is None
                    and r and not r.get("open_sessions") and not r.get("restarting")):
                since = since or time.time()
                if time.time() - since >= SETTLE_QUIET:
                    return True
            else:
                since = None
            if (s.get("state") == "backup" and s.get("router_action") is None
                    and time.time() - asked > FAILBACK_EVERY):
                asked = time.time()
                with contextlib.suppress(ControlError):
                    await self.daemon.command("failback", "chaos: the fault is over")
            await asyncio.sleep(SAMPLE)
        return False

    # -- the end ----------------------------------------------------------------------------

    async def _finish(self) -> None:
        self.current = "final"
        self.progress("final: settling, waiting for the mail, stopping the daemon")
        self.watch.quiet = await self._settle()
        sent = set(self.watch.mails_sent)
        await poll(lambda: sent <= self._delivered(), MAIL_DEADLINE, step=0.5)
        wan = await self.lab.read_wan()
        running = self.watch.router.get("running")
        if wan is None or wan.as_dict() != running:
            self._violate("router_config_is_a_wan", {
                "which": "namespace", "namespace_wan": wan.as_dict() if wan else None,
                "emulator_running": running})
        self.watch.expect_running = self.watch.quiet = False
        status, took = await self.daemon.send_signal(signal.SIGTERM, TERM_TIMEOUT)
        self.terms.append({"exit_status": status, "took_s": round(took, 2), "during": "end"})
        if status != 0:
            self._violate("sigterm_exits_0", self.terms[-1])
        for subject in sorted(sent - self._delivered()):
            self._violate("mail_delivered", {"subject": subject})
        if bounced := maillog_bounces(self.lab):
            self._violate("mail_not_bounced", {"maillog_status_bounced": bounced})
        journal = [{**e, "_at": epoch(e.get("timestamp"))} for e in self.daemon.events]
        found, self.seq_summary = check_seq(
            journal, mqtt_events(self.watch.read_mqtt(), self.prefix), self.kills,
            time.time() - self.t0)
        for v in found:
            self._violate(v.invariant, v.detail)

    def _delivered(self) -> set[str]:
        return {str(m.get("subject")) for m in self.lab.sink_messages()}

    def report(self) -> dict[str, Any]:
        self.daemon.read()
        actions = Counter(str(e.get("action")) for e in self.daemon.events
                          if e.get("event_kind") == "action"
                          and str(e.get("event", "")).endswith(": started"))
        router = self.watch.router
        sent = self.watch.mails_sent
        starts = self.watch.starts
        return {
            "seed": self.opt.seed, "minutes": self.opt.minutes,
            "router_restart_s": self.lab.router_restart, "console": self.lab.console,
            "ran_s": round(time.time() - self.t0, 1),
            "faults": dict(Counter(e.fault.kind for e in self.episodes)),
            "violations": {"total": len(self.violations), "by_invariant": tally(self.violations),
                           "details": [v.as_dict() for v in self.violations[:100]]},
            "invariants_checked": list(INVARIANTS),
            "mails": {"sent": len(sent), "delivered": len(set(sent) & self._delivered()),
                      "send_errors": len(self.watch.mail_errors),
                      "send_error_samples": self.watch.mail_errors[:5],
                      "maillog_status_bounced": maillog_bounces(self.lab)},
            "router": {"actions_started": dict(actions),
                       **{k: router.get(k) for k in ("saves", "restarts", "sessions",
                                                     "max_open", "overlaps")},
                       "final": {"saved": circuit_of(router.get("saved")),
                                 "running": circuit_of(router.get("running"))}},
            "daemon": {"starts": len(starts),
                       "agree_after_start_s": [s.get("agree_s") for s in starts],
                       "sigterm": self.terms, "kills": len(self.kills),
                       "unexpected_exits": self.watch.exits},
            "seq": getattr(self, "seq_summary", {}),
            "resources": resources_report(self.watch.lives),
            "by_kind": by_kind(self.episodes),
            "episodes": [e.as_dict() for e in self.episodes],
        }


def maillog_bounces(lab: Lab) -> int | None:
    """`status=bounced` lines in the backup MX Postfix's maillog (None if unreadable)."""
    path = lab.services().get("postfix", {}).get("maillog")
    try:
        return len(re.findall(r"status=bounced", Path(path).read_text(errors="replace")))
    except (OSError, TypeError):
        return None
