"""The handlers of the machine's table (`machine.RULES`), grouped by where events come from.

A handler takes the step's `Builder` and the event, and changes the context, emits
actions, transitions and notes only through the builder. None asks which state it is in:
the table picks the handler for the state, so a state that behaves differently has its
own handler, and what states share is a shared small function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .machine_builder import Builder, hold_down
from .machine_types import (
    BackupDown,
    BackupUp,
    Cause,
    DnsChecked,
    Evidence,
    MailPathChanged,
    MxJob,
    MxResult,
    PrimaryDown,
    PrimaryUp,
    RouterJob,
    RouterResult,
    Tick,
)
from .model import Circuit, DnsHealth, EventKind, LinkHealth, MailPath

# A row's entry: the step's builder and the event (of the type the row maps it from).
Handler = Callable[[Builder, Any], None]


def _summary(evidence: Evidence) -> str:
    text = evidence.get("summary")
    return f": {text}" if text else ""


def colon(detail: str) -> str:
    return f": {detail}" if detail else ""


# -- handlers: the monitor ------------------------------------------------------------


def record_down(b: Builder, ev: PrimaryDown) -> None:
    if b.ctx.primary_link != LinkHealth.DOWN:
        b.note(EventKind.PROBE_ALARM, "primary down" + _summary(ev.evidence), **ev.evidence)
    b.set(primary_link=LinkHealth.DOWN, primary_down_seen=str(ev.evidence.get("summary", "")))


def fail_over(b: Builder, ev: PrimaryDown) -> None:
    record_down(b, ev)
    if b.ctx.router_job is not None:
        return
    if b.ctx.trial_until is not None and b.now < b.ctx.trial_until:
        reason, cause = "trial failback failed: primary down again", Cause.TRIAL
    else:
        reason, cause = "primary down", Cause.PRIMARY_DOWN
    b.set(trial_until=None)
    b.apply(Circuit.BACKUP, reason + _summary(ev.evidence), cause, ev.evidence)


def record_up(b: Builder, ev: PrimaryUp) -> None:
    if b.ctx.primary_link == LinkHealth.DOWN:
        b.note(EventKind.PROBE_ALARM, "primary up" + _summary(ev.evidence), **ev.evidence)
    b.set(primary_link=LinkHealth.UP)


def up_on_backup(b: Builder, ev: PrimaryUp) -> None:
    record_up(b, ev)
    b.auto_failback_if_due(ev.evidence)


def record_mail_path(b: Builder, ev: MailPathChanged) -> None:
    new = MailPath.OK if ev.ok else MailPath.FAILING
    if _alarming(b.ctx.mail_path, new):
        b.note(EventKind.PROBE_ALARM, f"mail path {new.value}" + colon(ev.detail))
    b.set(mail_path=new)


def mail_path_on_backup(b: Builder, ev: MailPathChanged) -> None:
    record_mail_path(b, ev)
    recent = b.ctx.last_verify is not None and b.now - b.ctx.last_verify < 60.0
    if not ev.ok and not recent:
        b.mx(MxJob.VERIFY)


def _alarming(old: MailPath, new: MailPath) -> bool:
    """An alarm when the mail path starts failing, and when it recovers; not at start."""
    return new != old and (new == MailPath.FAILING or old == MailPath.FAILING)


# -- handlers: outside (the backup circuit, the DNS checks) ----------------------------


def record_backup_down(b: Builder, ev: BackupDown) -> None:
    if b.ctx.backup_link != LinkHealth.DOWN:
        both = b.ctx.primary_link != LinkHealth.UP
        b.note(EventKind.PROBE_ALARM,
               ("both circuits down: the backup circuit is down too" if both else
                "backup circuit down (the primary answers)") + _summary(ev.evidence),
               **ev.evidence)
    b.set(backup_link=LinkHealth.DOWN)


def backup_down_on_backup(b: Builder, ev: BackupDown) -> None:
    record_backup_down(b, ev)
    try_primary_if_both_down(b, ev.evidence)


def try_primary_if_both_down(b: Builder, evidence: Evidence) -> None:
    """trial and auto: with the backup circuit dead too, try the primary now instead of
    after the hold-down; once per hold-down (which doubles as failbacks pile up), so two
    dead circuits are not a restart loop."""
    ctx = b.ctx
    if ctx.cfg.failback_mode == "manual" or ctx.backup_link != LinkHealth.DOWN:
        return
    if ctx.router_job is not None:
        return
    if ctx.both_down_tried is not None and b.now - ctx.both_down_tried < hold_down(ctx, b.now):
        return
    b.set(trial=True, both_down_tried=b.now)
    b.apply(Circuit.PRIMARY, "both circuits down: trying the primary now, without the "
            "hold-down", Cause.BACKUP_DOWN, evidence)


def record_backup_up(b: Builder, ev: BackupUp) -> None:
    if b.ctx.backup_link == LinkHealth.DOWN:
        b.note(EventKind.PROBE_ALARM, "backup circuit up again" + _summary(ev.evidence),
               **ev.evidence)
    b.set(backup_link=LinkHealth.UP)


def held_backup(b: Builder, ev: BackupDown | BackupUp) -> None:
    b.set(backup_link=LinkHealth.DOWN if isinstance(ev, BackupDown) else LinkHealth.UP)


def record_dns(b: Builder, ev: DnsChecked) -> None:
    """An alarm when the checks start failing and when they pass again; `unknown` (no
    answer) is recorded, not alarmed: the next run that answers is judged against the
    last one that did (`dns_known`)."""
    known = b.ctx.dns_known
    if ev.health == DnsHealth.FAILING and known != DnsHealth.FAILING:
        b.note(EventKind.PROBE_ALARM, "DNS check failed" + colon(ev.detail), **ev.evidence)
    elif ev.health == DnsHealth.OK and known == DnsHealth.FAILING:
        b.note(EventKind.PROBE_ALARM, "DNS checks pass again", **ev.evidence)
    held_dns(b, ev)


def held_dns(b: Builder, ev: DnsChecked) -> None:
    b.set(dns=ev.health)
    if ev.health != DnsHealth.UNKNOWN:
        b.set(dns_known=ev.health)


def held_health(b: Builder, ev: PrimaryDown | PrimaryUp) -> None:
    b.set(primary_link=LinkHealth.DOWN if isinstance(ev, PrimaryDown) else LinkHealth.UP,
          primary_down_seen=str(ev.evidence.get("summary", "")))


def held_mail(b: Builder, ev: MailPathChanged) -> None:
    b.set(mail_path=MailPath.OK if ev.ok else MailPath.FAILING)


# -- handlers: the executor -----------------------------------------------------------


def _router_done(b: Builder, ev: RouterResult) -> bool:
    """Record a router result; False when stale (not the action in flight)."""
    if ev.action_id != b.ctx.router_job:
        return False
    kind = b.ctx.router_job_kind
    b.set(router_job=None, router_job_kind=None)
    if ev.ok or ev.circuit != Circuit.UNKNOWN:
        b.set(circuit=ev.circuit)
    if kind == RouterJob.APPLY:
        b.add_durations(ev.durations)
    return True


def held_router(b: Builder, ev: RouterResult) -> None:
    _router_done(b, ev)  # held: record what the router did, act on nothing


def after_read(b: Builder, ev: RouterResult) -> None:
    if not _router_done(b, ev):
        return
    if not ev.ok:
        b.fault(f"cannot read the router: {ev.detail}", Cause.ROUTER)
        return  # where a failed apply wanted to go (intent) still stands
    b.set(intent=None)
    if ev.circuit == Circuit.PRIMARY:
        b.enter_primary("router is on the primary circuit", Cause.ROUTER)
    elif ev.circuit == Circuit.BACKUP:
        b.set(flushed=False)
        b.enter_backup("router is on the backup circuit", Cause.ROUTER)
        b.mx(MxJob.VERIFY)
    else:
        b.fault("router WAN matches neither the primary nor the backup config"
                + colon(ev.detail), Cause.ROUTER)


def _moved(b: Builder, ev: RouterResult, to: Circuit, move: str) -> bool:
    """Record an apply's result: True when it put the router on `to`, else a fault."""
    if not _router_done(b, ev):
        return False
    if ev.ok and ev.circuit == to:
        return True
    b.fault(f"{move} failed: {ev.detail or f'router not on {to.value} after apply'}",
            Cause.ACTION_FAILED, b.move_evidence())
    return False


def after_failover(b: Builder, ev: RouterResult) -> None:
    if not _moved(b, ev, Circuit.BACKUP, "failover"):
        return
    b.set(flushed=False, retries=0)
    if b.ctx.cfg.mx:
        b.mx(MxJob.VERIFY)  # `backup` is announced once the mail path has been checked
    else:
        b.enter_backup("router on the backup circuit", Cause.ROUTER, b.move_evidence())


def after_failback(b: Builder, ev: RouterResult) -> None:
    if not _moved(b, ev, Circuit.PRIMARY, "failback"):
        return
    trial = b.ctx.trial
    recent = tuple(t for t in b.ctx.failbacks if b.now - t <= b.ctx.cfg.flap_window)
    b.set(failbacks=(*recent, b.now), primary_link=LinkHealth.UNKNOWN, trial=False,
          trial_until=b.now + b.ctx.cfg.trial_check if trial else None)
    b.enter_primary("router back on the primary circuit" + (" (trial)" if trial else ""),
                    Cause.ROUTER, b.move_evidence())
    cfg = b.ctx.cfg
    if cfg.mx and cfg.flush:
        # mail sent while the router restarted waits on the backup MX: verify, then flush
        b.set(failback_flush=True, flushed=False, reflush_at=None, failback_verify_at=None,
              failback_flush_until=b.now + cfg.verify_interval)
        b.mx(MxJob.VERIFY)   # else due at the next tick, once the job in flight ends


def _mx_done(b: Builder, ev: MxResult) -> MxJob | None:
    """Record an MX result: the kind of job it ends, None when stale."""
    if ev.action_id != b.ctx.mx_job:
        return None
    kind = b.ctx.mx_job_kind
    b.set(mx_job=None, mx_job_kind=None)
    if kind == MxJob.FLUSH:
        first = not b.ctx.flushed and b.ctx.reflush_at is None
        b.set(flushed=ev.ok)   # no note: the action's own event says how the flush went
        if ev.ok and first and b.ctx.cfg.reflush_after > 0:
            b.set(reflush_at=b.now + b.ctx.cfg.reflush_after)
    else:
        mail = MailPath.OK if ev.ok else MailPath.FAILING
        if _alarming(b.ctx.mail_path, mail):
            b.note(EventKind.PROBE_ALARM, f"backup MX {'verified' if ev.ok else 'check failed'}"
                   + colon(ev.detail))
        b.set(mail_path=mail)
    return kind


def record_mx(b: Builder, ev: MxResult) -> None:
    _mx_done(b, ev)  # a check's verdict is the mail path's health; nothing follows


def mx_on_backup(b: Builder, ev: MxResult) -> None:
    _mx_follow_up(b, ev, _mx_done(b, ev))


def _mx_follow_up(b: Builder, ev: MxResult, kind: MxJob | None) -> None:
    """On backup: flush once the MX is verified; repair it when a check failed."""
    if kind in (None, MxJob.FLUSH):
        return
    if ev.ok and b.ctx.cfg.flush and not b.ctx.flushed:
        b.mx(MxJob.FLUSH)
    elif not ev.ok and kind == MxJob.VERIFY and b.ctx.cfg.repair:
        b.mx(MxJob.REPAIR)


def mx_on_primary(b: Builder, ev: MxResult) -> None:
    """After a failback: flush once the MX is verified; a failed verify (the tunnel may
    still be coming up) is tried again after `retry_initial`, until the flush is owed no
    more (`failback_flush_until`)."""
    kind = _mx_done(b, ev)
    if kind is None or not b.ctx.failback_flush:
        return
    if kind == MxJob.VERIFY and ev.ok:
        b.set(failback_flush=False, failback_flush_until=None)
        b.mx(MxJob.FLUSH)
    elif kind == MxJob.VERIFY:
        b.set(failback_verify_at=b.now + b.ctx.cfg.retry_initial)


def mx_failing_over(b: Builder, ev: MxResult) -> None:
    kind = _mx_done(b, ev)
    if kind is None or b.ctx.router_job is not None:
        return  # the apply is still running: its result decides
    b.add_durations({"mx_checks": ev.seconds})
    b.enter_backup("router on the backup circuit; backup MX "
                   + ("verified" if ev.ok else f"check failed: {ev.detail}"),
                   Cause.ROUTER, b.move_evidence())
    _mx_follow_up(b, ev, kind)


# -- handlers: time -------------------------------------------------------------------


def tick_on_backup(b: Builder, _ev: Tick) -> None:
    ctx, now = b.ctx, b.now
    if ctx.last_verify is None or now - ctx.last_verify >= ctx.cfg.verify_interval:
        b.mx(MxJob.VERIFY)
    _reflush_if_due(b)
    try_primary_if_both_down(b, {})
    if b.ctx.router_job is not None:
        return   # trying the primary already
    if ctx.cfg.failback_mode == "auto":
        b.auto_failback_if_due({})
    elif ctx.cfg.failback_mode == "trial" and ctx.next_trial_at is not None \
            and now >= ctx.next_trial_at and ctx.router_job is None:
        b.set(trial=True, next_trial_at=now + ctx.cfg.trial_interval)
        b.apply(Circuit.PRIMARY, f"trial failback (every {ctx.cfg.trial_interval:g}s)",
                Cause.TRIAL)


def tick_on_primary(b: Builder, _ev: Tick) -> None:
    ctx, now = b.ctx, b.now
    if ctx.trial_until is not None and now >= ctx.trial_until:
        b.set(trial_until=None)
        b.note(EventKind.ACTION, "trial failback held: the primary stayed up")
    if ctx.failback_flush and ctx.mx_job is None:
        if ctx.failback_flush_until is not None and now >= ctx.failback_flush_until:
            b.set(failback_flush=False, failback_flush_until=None)
            b.note(EventKind.ACTION, "after the failback the backup MX could not be "
                   "verified: its queue was not flushed (Postfix retries on its own schedule)")
        elif ctx.failback_verify_at is None or now >= ctx.failback_verify_at:
            b.set(failback_verify_at=None)
            b.mx(MxJob.VERIFY)
    _reflush_if_due(b)


def _reflush_if_due(b: Builder) -> None:
    """The second flush, `reflush_after` the first (after a failover or a failback)."""
    if b.ctx.reflush_at is not None and b.now >= b.ctx.reflush_at and b.ctx.mx_job is None:
        b.set(reflush_at=None)
        b.mx(MxJob.FLUSH)


def tick_in_fault(b: Builder, _ev: Tick) -> None:
    if b.ctx.retry_at is not None and b.now >= b.ctx.retry_at and b.ctx.router_job is None:
        b.retry()
