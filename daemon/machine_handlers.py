"""The handlers of the machine's table (`machine.RULES`), grouped by where events come from.

A handler takes the step's `Builder` and the event, and changes the context, emits
actions, transitions and notes only through the builder. None asks which state it is in:
the table picks the handler for the state, so a state that behaves differently has its
own handler, and what states share is a shared small function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .machine_builder import Builder, probe_plan
from .machine_types import (
    Asked,
    Cause,
    Command,
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
from .model import Action, Circuit, EventKind, LinkHealth, MailPath, State

# A row's entry: the step's builder and the event (of the type the row maps it from).
Handler = Callable[[Builder, Any], None]


def _summary(evidence: Evidence) -> str:
    text = evidence.get("summary")
    return f": {text}" if text else ""


def _colon(detail: str) -> str:
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
        b.note(EventKind.PROBE_ALARM, f"mail path {new.value}" + _colon(ev.detail))
    b.set(mail_path=new)


def mail_path_on_backup(b: Builder, ev: MailPathChanged) -> None:
    record_mail_path(b, ev)
    recent = b.ctx.last_verify is not None and b.now - b.ctx.last_verify < 60.0
    if not ev.ok and not recent:
        b.mx(MxJob.VERIFY)


def _alarming(old: MailPath, new: MailPath) -> bool:
    """An alarm when the mail path starts failing, and when it recovers; not at start."""
    return new != old and (new == MailPath.FAILING or old == MailPath.FAILING)


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
                + _colon(ev.detail), Cause.ROUTER)


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
                   + _colon(ev.detail))
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


def mx_failing_over(b: Builder, ev: MxResult) -> None:
    kind = _mx_done(b, ev)
    if kind is None or b.ctx.router_job is not None:
        return  # the apply is still running: its result decides
    if kind == MxJob.FLUSH:
        b.mx(MxJob.VERIFY)  # a flush was running when the router moved: verify now
        return
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
    if ctx.reflush_at is not None and now >= ctx.reflush_at and ctx.mx_job is None:
        b.set(reflush_at=None)
        b.mx(MxJob.FLUSH)
    if ctx.cfg.failback_mode == "auto":
        b.auto_failback_if_due({})
    elif ctx.cfg.failback_mode == "trial" and ctx.next_trial_at is not None \
            and now >= ctx.next_trial_at and ctx.router_job is None:
        b.set(trial=True, next_trial_at=now + ctx.cfg.trial_interval)
        b.apply(Circuit.PRIMARY, f"trial failback (every {ctx.cfg.trial_interval:g}s)",
                Cause.TRIAL)


def tick_on_primary(b: Builder, _ev: Tick) -> None:
    if b.ctx.trial_until is not None and b.now >= b.ctx.trial_until:
        b.set(trial_until=None)
        b.note(EventKind.ACTION, "trial failback held: the primary stayed up")


def tick_in_fault(b: Builder, _ev: Tick) -> None:
    if b.ctx.retry_at is not None and b.now >= b.ctx.retry_at and b.ctx.router_job is None:
        b.retry()


# -- handlers: the operator -----------------------------------------------------------
# Each state's row says what each command does there (`commands` below). A rule takes
# the builder and what was asked; it returns None when it accepted the command, else
# why it refused.


Rule = Callable[[Builder, Asked], str | None]


def hold_now(b: Builder, asked: Asked) -> None:
    b.go(State.HELD, asked.why, Cause.OPERATOR)


def verify_now(b: Builder, _asked: Asked) -> str | None:
    if not b.ctx.cfg.mx:
        return "no backup MX configured"
    if b.ctx.mx_job is not None:
        return "an MX action is already running"
    b.mx(MxJob.VERIFY)
    return None


def failover_now(b: Builder, asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    b.apply(Circuit.BACKUP, asked.why, Cause.OPERATOR)
    return None


def failback_now(b: Builder, asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    # the monitor probes the primary now and sees it down: failing back would fail over
    # again a few rounds later
    if b.ctx.primary_link == LinkHealth.DOWN and probe_plan(b.ctx).probe and not asked.force:
        seen = b.ctx.primary_down_seen
        return (f"the monitor sees the primary circuit down{': ' + seen if seen else ''}; "
                "failback with force (dslfailover failback --force) moves anyway")
    b.set(trial=False)
    b.apply(Circuit.PRIMARY, asked.why, Cause.OPERATOR)
    return None


def not_here(b: Builder, _asked: Asked) -> str:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    return f"not possible in state {b.ctx.state.value}"


def resume_retries(b: Builder, _asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "not held"
    b.retry()
    return None


def resume_held(b: Builder, asked: Asked) -> str | None:
    why = asked.why
    if b.ctx.router_job is not None:
        return "a router action is still in flight; resume when it is done"
    if b.ctx.circuit == Circuit.PRIMARY:
        b.enter_primary(why, Cause.OPERATOR)
    elif b.ctx.circuit == Circuit.BACKUP:
        b.go(State.BACKUP, why, Cause.OPERATOR)
        if b.ctx.backup_since is None:
            b.enter_backup(why, Cause.OPERATOR)
    else:
        b.go(State.STARTING, why, Cause.OPERATOR)
        b.read_router()
    return None


def refuse(text: str) -> Rule:
    return lambda b, asked: text


def commands(*, hold: Rule, resume: Rule, failover: Rule, failback: Rule,
              verify: Rule) -> Handler:
    rules = {Action.HOLD: hold, Action.RESUME: resume, Action.FAILOVER: failover,
             Action.FAILBACK: failback, Action.VERIFY: verify}

    def handle(b: Builder, ev: Command) -> None:
        cmd = ev.command
        why = f"{cmd.action.value} by {cmd.source}" + _colon(cmd.reason)
        refused = rules[cmd.action](b, Asked(why, cmd.force))
        b.note(EventKind.COMMAND, why + (f" — refused: {refused}" if refused else ""),
               action=cmd.action.value, source=cmd.source, accepted=refused is None)
    return handle


NOT_HELD, PAUSED = refuse("not held"), refuse("held: automation paused; resume first")

