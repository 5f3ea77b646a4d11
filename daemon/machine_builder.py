"""The building blocks of the machine's rules: one step's changes, built in one place.

`Builder` is the only place where a transition, an action or a note is made: handlers in
`machine_handlers.py` call it, and it refuses any transition that the `allowed` table
(`machine.ALLOWED`) does not list. It also holds the small pieces of behaviour that
several states share (entering `primary`/`backup`, going to `fault`, a retry, an
automatic failback); none of them asks which state the machine is in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .machine_types import (
    AbandonMx,
    ApplyWan,
    Cause,
    Context,
    Decision,
    Effect,
    Evidence,
    FlushMx,
    MxAction,
    MxJob,
    Note,
    ProbePlan,
    ProbeVia,
    ReadRouter,
    RepairMx,
    RouterJob,
    Transition,
    VerifyMx,
)
from .model import Circuit, EventKind, LinkHealth, State

# reaching these from these, the router moved or was found: the monitor starts afresh
_SETTLED = frozenset({State.PRIMARY, State.BACKUP})
_UNSETTLED = frozenset({State.FAILING_OVER, State.FAILING_BACK, State.STARTING, State.FAULT})


class TransitionNotAllowed(Exception):
    """A handler tried a transition that the allowed table does not list (a bug in the rules)."""

    def __init__(self, from_state: State, to_state: State, reason: str) -> None:
        super().__init__(f"{from_state.value} -> {to_state.value} is not allowed ({reason})")
        self.from_state, self.to_state = from_state, to_state


# -- building blocks ------------------------------------------------------------------


class Builder:
    """Accumulates one step's changes; handlers stay short and readable."""

    def __init__(self, ctx: Context, now: float,
                 allowed: Mapping[State, frozenset[State]]) -> None:
        self.ctx = ctx
        self.allowed = allowed
        self.now = now
        self.actions: list[Effect] = []
        self.transitions: list[Transition] = []
        self.notes: list[Note] = []

    def set(self, **changes: Any) -> None:
        self.ctx = replace(self.ctx, **changes)

    def _new_id(self) -> int:
        action_id = self.ctx.next_id
        self.set(next_id=action_id + 1)
        return action_id

    def go(self, state: State, reason: str, cause: Cause,
           evidence: Evidence | None = None) -> None:
        assert reason, "every transition has a reason"
        old = self.ctx.state
        if state == old:
            return
        if state not in self.allowed[old]:
            raise TransitionNotAllowed(old, state, reason)
        self.transitions.append(
            Transition(old, state, reason, cause, dict(evidence or {}), self.now))
        self.set(state=state, since=self.now, reason=reason)

    def note(self, kind: EventKind, reason: str, **detail: Any) -> None:
        self.notes.append(Note(kind, reason, detail))

    def read_router(self) -> None:
        assert self.ctx.router_job is None
        action_id = self._new_id()
        self.set(router_job=action_id, router_job_kind=RouterJob.READ)
        self.actions.append(ReadRouter(action_id))

    def apply(self, circuit: Circuit, reason: str, cause: Cause,
              evidence: Evidence | None = None) -> None:
        """Move the router: to backup from `failing_over`, to primary from `failing_back`."""
        assert self.ctx.router_job is None
        state = State.FAILING_OVER if circuit == Circuit.BACKUP else State.FAILING_BACK
        self.go(state, reason, cause, evidence)
        job = self.ctx.mx_job
        if job is not None:
            started_now = [a for a in self.actions if a.action_id == job]
            if started_now:   # decided in this very step: it need not start at all
                self.actions.remove(started_now[0])
            else:
                self.actions.append(AbandonMx(job))
            self.set(mx_job=None, mx_job_kind=None)
        action_id = self._new_id()
        detect = (evidence or {}).get("detect_s")
        durations = (("detect", float(detect)),) if isinstance(detect, int | float) else ()
        # the router moves: what was seen of the backup circuit is moot, and a flush owed
        # after a failback is the next failover's business
        self.set(router_job=action_id, router_job_kind=RouterJob.APPLY, intent=circuit,
                 retry_at=None, durations=durations, backup_link=LinkHealth.UNKNOWN,
                 failback_flush=False)
        self.actions.append(ApplyWan(action_id, circuit, reason))

    def mx(self, kind: MxJob) -> None:
        if not self.ctx.cfg.mx or self.ctx.mx_job is not None:
            return
        action_id = self._new_id()
        self.set(mx_job=action_id, mx_job_kind=kind)
        if kind == MxJob.VERIFY:
            self.set(last_verify=self.now)
        self.actions.append(_MX_ACTIONS[kind](action_id))

    def add_durations(self, more: Mapping[str, float]) -> None:
        self.set(durations=(*self.ctx.durations,
                            *((k, float(v)) for k, v in more.items())))

    def move_evidence(self) -> dict[str, Any]:
        """The evidence that ends a router move: how long each of its steps took."""
        return {"durations_s": {k: round(v, 3) for k, v in self.ctx.durations}}

    def fault(self, reason: str, cause: Cause, evidence: Evidence | None = None) -> None:
        delay = min(self.ctx.cfg.retry_initial * 2 ** self.ctx.retries, self.ctx.cfg.retry_max)
        self.go(State.FAULT, reason, cause, evidence)
        self.set(retries=self.ctx.retries + 1, retry_at=self.now + delay)
        self.note(EventKind.ACTION, f"retry in {delay:g}s", retry=self.ctx.retries)

    def enter_backup(self, reason: str, cause: Cause, evidence: Evidence | None = None) -> None:
        self.go(State.BACKUP, reason, cause, evidence)
        hold = hold_down(self.ctx, self.now)
        first_trial = self.now + hold if self.ctx.cfg.failback_mode == "trial" else None
        self.set(backup_since=self.now, next_trial_at=first_trial, retries=0,
                 trial_until=None, reflush_at=None)

    def enter_primary(self, reason: str, cause: Cause, evidence: Evidence | None = None) -> None:
        self.go(State.PRIMARY, reason, cause, evidence)
        self.set(backup_since=None, next_trial_at=None, retries=0,
                 backup_link=LinkHealth.UNKNOWN)
        if self.ctx.primary_link == LinkHealth.DOWN and self.ctx.router_job is None:
            # known down already (after resume or a restart): act at once
            self.apply(Circuit.BACKUP, "primary down", Cause.PRIMARY_DOWN)

    def retry(self) -> None:
        """Retry from `fault`: where the failed apply wanted to go, or read the router."""
        ctx = self.ctx
        self.set(retry_at=None)
        target = ctx.intent
        if target == Circuit.BACKUP and ctx.primary_link == LinkHealth.UP:
            target = Circuit.PRIMARY  # the primary came back while we failed to leave it
        if target is None:
            self.read_router()
        else:
            move = "failover" if target == Circuit.BACKUP else "failback"
            self.apply(target, f"retry {ctx.retries}: {move}", Cause.RETRY)

    def auto_failback_if_due(self, evidence: Evidence) -> None:
        """Automatic failback: once the primary is up and the hold-down has passed."""
        ctx = self.ctx
        if ctx.cfg.failback_mode != "auto" or ctx.primary_link != LinkHealth.UP:
            return
        if ctx.router_job is not None or ctx.backup_since is None:
            return
        hold = hold_down(ctx, self.now)
        if self.now - ctx.backup_since >= hold:
            self.set(trial=False)
            self.apply(Circuit.PRIMARY, f"primary up and stable past the {hold:g}s hold-down",
                       Cause.PRIMARY_UP, evidence)

    def done(self) -> Decision:
        reset = any(t.to_state in _SETTLED and t.from_state in _UNSETTLED
                    for t in self.transitions)
        return Decision(self.ctx, tuple(self.actions), tuple(self.transitions),
                        tuple(self.notes), reset, probe_plan(self.ctx))


_MX_ACTIONS: dict[MxJob, Callable[[int], MxAction]] = {
    MxJob.VERIFY: VerifyMx, MxJob.REPAIR: RepairMx, MxJob.FLUSH: FlushMx}


def hold_down(ctx: Context, now: float) -> float:
    """The hold-down before an automatic failback: doubles per recent failback (flapping)."""
    cfg = ctx.cfg
    recent = sum(1 for t in ctx.failbacks if now - t <= cfg.flap_window)
    return float(min(cfg.hold_down * 2 ** recent, max(cfg.hold_down_max, cfg.hold_down)))


def probe_plan(ctx: Context) -> ProbePlan:
    """Whether to probe the primary, and over which path, in this context.

    On backup the primary is unreachable through the router by design (not a failure):
    only automatic failback probes it, over a path beside the router.
    """
    on_backup = ctx.circuit == Circuit.BACKUP or ctx.state in (State.BACKUP, State.FAILING_BACK)
    dns = ctx.state == State.PRIMARY
    # the backup circuit itself: probed through the router once it is settled on it
    backup = (ctx.cfg.backup_link and ctx.circuit == Circuit.BACKUP
              and ctx.state in _ON_BACKUP_CIRCUIT)
    if not on_backup:
        return ProbePlan(True, ProbeVia.PRIMARY, backup, dns)
    if ctx.cfg.failback_mode == "auto":
        return ProbePlan(True, ProbeVia.FAILBACK, backup, dns)
    return ProbePlan(False, None, backup, dns)


# states in which the router stays where it is (no move in flight, no read pending)
_ON_BACKUP_CIRCUIT = frozenset({State.BACKUP, State.HELD, State.FAULT})


