"""The failover state machine: pure, no I/O, no clock reads (DESIGN §2, §4).

    step(ctx, event, now) -> Decision(ctx, actions, transitions, notes)

`now` is a monotonic time in seconds, passed in by the caller. Events come from the
monitor (verdicts), the executor (outcomes of actions) and the operator (commands).
Actions are what the executor should do next; a transition is what publishers announce.
The handler for each (state, event type) pair lives in one table at the bottom, so what
each state allows reads in one place (after h11's `_state.py`).

Invariants (property-tested in tests/unit/test_machine_properties.py):
- at most one router action (read or apply) is in flight; at most one MX action;
- `held` never acts; every transition carries a reason;
- the router is only touched on entering `failing_over`/`failing_back`, or to read it in
  `starting`/`fault`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .model import Action, Circuit, LinkHealth, MailPath, OperatorCommand, State

Evidence = Mapping[str, Any]

# -- configuration -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineConfig:
    failback_mode: Literal["manual", "auto", "trial"] = "manual"
    hold_down: float = 300.0        # least time on backup before an automatic failback
    hold_down_max: float = 3600.0   # cap of the hold-down as it doubles for a flapping primary
    flap_window: float = 3600.0     # failbacks this recent count as flapping
    trial_interval: float = 900.0   # trial mode: time between attempts
    trial_check: float = 60.0       # trial mode: a failure this soon after failback reverts
    retry_initial: float = 5.0      # first retry of a failed action
    retry_max: float = 300.0        # retry backoff cap
    verify_interval: float = 300.0  # MX verification cadence while on backup
    mx: bool = False                # a backup MX is configured
    repair: bool = False            # repair the MX maps when verification fails
    flush: bool = True              # flush the MX queue after a verified failover
    # a second flush this long after the first: mail that was mid-delivery to the dead
    # tunnel at failover time is deferred only when Postfix's smtp_connect_timeout (30 s
    # by default) runs out, after the first flush; 0 turns it off
    reflush_after: float = 45.0


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: deadlines (hold-down, retries, trials, verify schedule) are checked."""


@dataclass(frozen=True, slots=True)
class PrimaryDown:
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrimaryUp:
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MailPathChanged:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RouterResult:
    """Outcome of ReadRouter or ApplyWan: which circuit the router is on now.

    A failed apply may still know the circuit: a router that runs the new config but
    does not route (the live proof failed) reports it, so the state says where it is.
    `durations` are the apply's steps in seconds (dialogue, restart_wait, read_back,
    live_proof), for the evidence of the transition that ends the move.
    """

    action_id: int
    ok: bool
    circuit: Circuit = Circuit.UNKNOWN
    detail: str = ""
    durations: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MxResult:
    """Outcome of VerifyMx, RepairMx or FlushMx."""

    action_id: int
    ok: bool
    detail: str = ""
    seconds: float = 0.0   # how long the action took (a verify's is `mx_checks`)


@dataclass(frozen=True, slots=True)
class Command:
    command: OperatorCommand


Event = Tick | PrimaryDown | PrimaryUp | MailPathChanged | RouterResult | MxResult | Command

# -- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadRouter:
    action_id: int


@dataclass(frozen=True, slots=True)
class ApplyWan:
    action_id: int
    circuit: Circuit
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyMx:
    action_id: int


@dataclass(frozen=True, slots=True)
class RepairMx:
    action_id: int


@dataclass(frozen=True, slots=True)
class FlushMx:
    action_id: int


RouterAction = ReadRouter | ApplyWan
MxAction = VerifyMx | RepairMx | FlushMx
Effect = RouterAction | MxAction

# -- results --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State
    to_state: State
    reason: str
    evidence: Evidence
    at: float


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth an audit event that is not a transition (a refused command...)."""

    kind: Literal["command", "probe_alarm", "action"]
    reason: str
    detail: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    cfg: MachineConfig
    state: State = State.STARTING
    circuit: Circuit = Circuit.UNKNOWN
    primary_link: LinkHealth = LinkHealth.UNKNOWN
    mail_path: MailPath = MailPath.UNKNOWN
    since: float = 0.0
    reason: str = "starting"
    next_id: int = 1
    router_job: int | None = None          # id of the router action in flight
    router_job_kind: str | None = None     # "read" | "apply"
    mx_job: int | None = None              # id of the MX action in flight
    mx_job_kind: str | None = None         # "verify" | "repair" | "flush"
    intent: Circuit | None = None          # where a failed apply wanted to go (fault retry)
    retries: int = 0
    retry_at: float | None = None
    backup_since: float | None = None
    failbacks: tuple[float, ...] = ()      # recent failback times, for the flap hold-down
    trial: bool = False                    # the failback in flight/just done is a trial
    trial_until: float | None = None       # trial: revert when the primary fails before this
    next_trial_at: float | None = None
    last_verify: float | None = None
    flushed: bool = False                  # flushed since the last failover
    reflush_at: float | None = None        # when the second flush is due
    # the steps of the router move in flight and how long each took (seconds): detect,
    # dialogue, restart_wait, read_back, live_proof, mx_checks; the evidence of `backup`
    # (or `primary` after a failback)
    durations: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    ctx: Context
    actions: tuple[Effect, ...] = ()
    transitions: tuple[Transition, ...] = ()
    notes: tuple[Note, ...] = ()


# -- building blocks ------------------------------------------------------------------


class _Builder:
    """Accumulates one step's changes; handlers stay short and readable."""

    def __init__(self, ctx: Context, now: float) -> None:
        self.ctx = ctx
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

    def go(self, state: State, reason: str, evidence: Evidence | None = None) -> None:
        assert reason, "every transition has a reason"
        if state != self.ctx.state:
            self.transitions.append(
                Transition(self.ctx.state, state, reason, dict(evidence or {}), self.now))
            self.set(state=state, since=self.now, reason=reason)

    def note(self, kind: Literal["command", "probe_alarm", "action"], reason: str,
             **detail: Any) -> None:
        self.notes.append(Note(kind, reason, detail))

    def read_router(self) -> None:
        assert self.ctx.router_job is None
        action_id = self._new_id()
        self.set(router_job=action_id, router_job_kind="read")
        self.actions.append(ReadRouter(action_id))

    def apply(self, circuit: Circuit, state: State, reason: str,
              evidence: Evidence | None = None) -> None:
        assert self.ctx.router_job is None
        self.go(state, reason, evidence)
        action_id = self._new_id()
        detect = (evidence or {}).get("detect_s")
        durations = (("detect", float(detect)),) if isinstance(detect, int | float) else ()
        self.set(router_job=action_id, router_job_kind="apply", intent=circuit,
                 retry_at=None, durations=durations)
        self.actions.append(ApplyWan(action_id, circuit, reason))

    def mx(self, kind: Literal["verify", "repair", "flush"]) -> None:
        if not self.ctx.cfg.mx or self.ctx.mx_job is not None:
            return
        action_id = self._new_id()
        self.set(mx_job=action_id, mx_job_kind=kind)
        if kind == "verify":
            self.set(last_verify=self.now)
            self.actions.append(VerifyMx(action_id))
        elif kind == "repair":
            self.actions.append(RepairMx(action_id))
        else:
            self.actions.append(FlushMx(action_id))

    def add_durations(self, more: Mapping[str, float]) -> None:
        self.set(durations=(*self.ctx.durations,
                            *((k, float(v)) for k, v in more.items())))

    def move_evidence(self) -> dict[str, Any]:
        """The evidence that ends a router move: how long each of its steps took."""
        return {"durations_s": {k: round(v, 3) for k, v in self.ctx.durations}}

    def fault(self, reason: str, evidence: Evidence | None = None) -> None:
        delay = min(self.ctx.cfg.retry_initial * 2 ** self.ctx.retries, self.ctx.cfg.retry_max)
        self.go(State.FAULT, reason, evidence)
        self.set(retries=self.ctx.retries + 1, retry_at=self.now + delay)
        self.note("action", f"retry in {delay:g}s", retry=self.ctx.retries)

    def enter_backup(self, reason: str, evidence: Evidence | None = None) -> None:
        self.go(State.BACKUP, reason, evidence)
        hold = hold_down(self.ctx, self.now)
        first_trial = self.now + hold if self.ctx.cfg.failback_mode == "trial" else None
        self.set(backup_since=self.now, next_trial_at=first_trial, retries=0,
                 trial_until=None, reflush_at=None)

    def enter_primary(self, reason: str, evidence: Evidence | None = None) -> None:
        self.go(State.PRIMARY, reason, evidence)
        self.set(backup_since=None, next_trial_at=None, retries=0)
        self.failover_if_down()

    def failover_if_down(self) -> None:
        """On primary with a primary known down (e.g. after resume or a restart): act."""
        if self.ctx.state == State.PRIMARY and self.ctx.primary_link == LinkHealth.DOWN \
                and self.ctx.router_job is None:
            self.apply(Circuit.BACKUP, State.FAILING_OVER, "primary down")

    def done(self) -> Decision:
        return Decision(self.ctx, tuple(self.actions), tuple(self.transitions),
                        tuple(self.notes))


def hold_down(ctx: Context, now: float) -> float:
    """The hold-down before an automatic failback: doubles per recent failback (flapping)."""
    cfg = ctx.cfg
    recent = sum(1 for t in ctx.failbacks if now - t <= cfg.flap_window)
    return float(min(cfg.hold_down * 2 ** recent, max(cfg.hold_down_max, cfg.hold_down)))


def _summary(evidence: Evidence) -> str:
    text = evidence.get("summary")
    return f": {text}" if text else ""


# -- handlers -------------------------------------------------------------------------

Handler = Callable[[_Builder, Any], None]


def _primary_down(b: _Builder, ev: PrimaryDown) -> None:
    was = b.ctx.primary_link
    b.set(primary_link=LinkHealth.DOWN)
    if was != LinkHealth.DOWN:
        b.note("probe_alarm", "primary down" + _summary(ev.evidence), **ev.evidence)
    if b.ctx.state != State.PRIMARY or b.ctx.router_job is not None:
        return  # on backup the primary is unreachable by design; elsewhere we are busy
    if b.ctx.trial_until is not None and b.now < b.ctx.trial_until:
        reason = "trial failback failed: primary down again" + _summary(ev.evidence)
    else:
        reason = "primary down" + _summary(ev.evidence)
    b.set(trial_until=None)
    b.apply(Circuit.BACKUP, State.FAILING_OVER, reason, ev.evidence)


def _primary_up(b: _Builder, ev: PrimaryUp) -> None:
    was = b.ctx.primary_link
    b.set(primary_link=LinkHealth.UP)
    if was == LinkHealth.DOWN:
        b.note("probe_alarm", "primary up" + _summary(ev.evidence), **ev.evidence)
    if b.ctx.state == State.BACKUP:
        _maybe_auto_failback(b, ev.evidence)


def _maybe_auto_failback(b: _Builder, evidence: Evidence) -> None:
    ctx = b.ctx
    if ctx.cfg.failback_mode != "auto" or ctx.primary_link != LinkHealth.UP:
        return
    if ctx.router_job is not None or ctx.backup_since is None:
        return
    hold = hold_down(ctx, b.now)
    if b.now - ctx.backup_since >= hold:
        b.set(trial=False)
        b.apply(Circuit.PRIMARY, State.FAILING_BACK,
                f"primary up and stable past the {hold:g}s hold-down", evidence)


def _mail_path(b: _Builder, ev: MailPathChanged) -> None:
    new = MailPath.OK if ev.ok else MailPath.FAILING
    if _alarming(b.ctx.mail_path, new):
        b.note("probe_alarm", f"mail path {new.value}" + (f": {ev.detail}" if ev.detail else ""))
    b.set(mail_path=new)
    if not ev.ok and b.ctx.state == State.BACKUP:
        recent = b.ctx.last_verify is not None and b.now - b.ctx.last_verify < 60.0
        if not recent:
            b.mx("verify")


def _alarming(old: MailPath, new: MailPath) -> bool:
    """An alarm when the mail path starts failing, and when it recovers; not at start."""
    return new != old and (new == MailPath.FAILING or old == MailPath.FAILING)


def _router_result(b: _Builder, ev: RouterResult) -> None:
    if ev.action_id != b.ctx.router_job:
        return  # stale: not the action in flight
    kind = b.ctx.router_job_kind
    b.set(router_job=None, router_job_kind=None)
    if ev.ok or ev.circuit != Circuit.UNKNOWN:
        b.set(circuit=ev.circuit)
    if kind == "apply":
        b.add_durations(ev.durations)
    state = b.ctx.state
    if state == State.HELD:
        return  # held: record what the router did, act on nothing
    if kind == "read":
        _after_read(b, ev)
    elif state == State.FAILING_OVER:
        _after_failover(b, ev)
    elif state == State.FAILING_BACK:
        _after_failback(b, ev)


def _after_read(b: _Builder, ev: RouterResult) -> None:
    if not ev.ok:
        b.fault(f"cannot read the router: {ev.detail}")
    elif ev.circuit == Circuit.PRIMARY:
        b.set(intent=None)
        b.enter_primary("router is on the primary circuit")
    elif ev.circuit == Circuit.BACKUP:
        b.set(intent=None, flushed=False)
        b.enter_backup("router is on the backup circuit")
        b.mx("verify")
    else:
        b.set(intent=None)
        b.fault("router WAN matches neither the primary nor the backup config"
                + (f": {ev.detail}" if ev.detail else ""))


def _after_failover(b: _Builder, ev: RouterResult) -> None:
    if not ev.ok or ev.circuit != Circuit.BACKUP:
        b.fault(f"failover failed: {ev.detail or 'router not on backup after apply'}",
                b.move_evidence())
        return
    b.set(flushed=False, retries=0)
    if b.ctx.cfg.mx:
        b.mx("verify")  # `backup` is announced once the mail path has been checked
    else:
        b.enter_backup("router on the backup circuit", b.move_evidence())


def _after_failback(b: _Builder, ev: RouterResult) -> None:
    if not ev.ok or ev.circuit != Circuit.PRIMARY:
        b.fault(f"failback failed: {ev.detail or 'router not on primary after apply'}",
                b.move_evidence())
        return
    trial = b.ctx.trial
    recent = tuple(t for t in b.ctx.failbacks if b.now - t <= b.ctx.cfg.flap_window)
    b.set(failbacks=(*recent, b.now), primary_link=LinkHealth.UNKNOWN, trial=False,
          trial_until=b.now + b.ctx.cfg.trial_check if trial else None)
    b.enter_primary("router back on the primary circuit" + (" (trial)" if trial else ""),
                    b.move_evidence())


def _mx_result(b: _Builder, ev: MxResult) -> None:
    if ev.action_id != b.ctx.mx_job:
        return
    kind = b.ctx.mx_job_kind
    b.set(mx_job=None, mx_job_kind=None)
    if kind == "flush":
        first = not b.ctx.flushed and b.ctx.reflush_at is None
        b.set(flushed=ev.ok)
        if ev.ok and first and b.ctx.cfg.reflush_after > 0:
            b.set(reflush_at=b.now + b.ctx.cfg.reflush_after)
        b.note("action", "queue flushed" if ev.ok else f"flush failed: {ev.detail}")
        if b.ctx.state == State.FAILING_OVER and b.ctx.router_job is None:
            b.mx("verify")  # a flush was running when the router moved: verify now
        return
    mail = MailPath.OK if ev.ok else MailPath.FAILING
    if _alarming(b.ctx.mail_path, mail):
        b.note("probe_alarm", f"backup MX {'verified' if ev.ok else 'check failed'}"
               + (f": {ev.detail}" if ev.detail else ""))
    b.set(mail_path=mail)
    if b.ctx.state == State.HELD:
        return
    if b.ctx.state == State.FAILING_OVER and b.ctx.router_job is None:
        b.add_durations({"mx_checks": ev.seconds})
        if ev.ok:
            b.enter_backup("router on the backup circuit; backup MX verified",
                           b.move_evidence())
        else:
            b.enter_backup(f"router on the backup circuit; backup MX check failed: {ev.detail}",
                           b.move_evidence())
    if b.ctx.state != State.BACKUP:
        return
    if ev.ok and b.ctx.cfg.flush and not b.ctx.flushed:
        b.mx("flush")
    elif not ev.ok and kind == "verify" and b.ctx.cfg.repair:
        b.mx("repair")


def _tick(b: _Builder, _ev: Tick) -> None:
    ctx, now = b.ctx, b.now
    if ctx.state == State.BACKUP:
        if ctx.last_verify is None or now - ctx.last_verify >= ctx.cfg.verify_interval:
            b.mx("verify")
        if ctx.reflush_at is not None and now >= ctx.reflush_at and ctx.mx_job is None:
            b.set(reflush_at=None)
            b.mx("flush")
        if ctx.cfg.failback_mode == "auto":
            _maybe_auto_failback(b, {})
        elif ctx.cfg.failback_mode == "trial" and ctx.next_trial_at is not None \
                and now >= ctx.next_trial_at and ctx.router_job is None:
            b.set(trial=True, next_trial_at=now + ctx.cfg.trial_interval)
            b.apply(Circuit.PRIMARY, State.FAILING_BACK,
                    f"trial failback (every {ctx.cfg.trial_interval:g}s)")
    elif ctx.state == State.PRIMARY:
        if ctx.trial_until is not None and now >= ctx.trial_until:
            b.set(trial_until=None)
            b.note("action", "trial failback held: the primary stayed up")
    elif ctx.state == State.FAULT and ctx.retry_at is not None and now >= ctx.retry_at \
            and ctx.router_job is None:
        _retry(b)


def _retry(b: _Builder) -> None:
    ctx = b.ctx
    b.set(retry_at=None)
    target = ctx.intent
    if target == Circuit.BACKUP and ctx.primary_link == LinkHealth.UP:
        target = Circuit.PRIMARY  # the primary came back while we were failing to leave it
    if target is None:
        b.read_router()
    elif target == Circuit.BACKUP:
        b.apply(target, State.FAILING_OVER, f"retry {ctx.retries}: failover")
    else:
        b.apply(target, State.FAILING_BACK, f"retry {ctx.retries}: failback")


def _command(b: _Builder, ev: Command) -> None:
    cmd = ev.command
    why = f"{cmd.action.value} by {cmd.source}" + (f": {cmd.reason}" if cmd.reason else "")
    state = b.ctx.state
    refused: str | None = None
    if cmd.action == Action.HOLD:
        if state == State.HELD:
            refused = "already held"
        else:
            b.go(State.HELD, why)
    elif cmd.action == Action.RESUME:
        refused = _resume(b, why)
    elif state == State.HELD:
        refused = "held: automation paused; resume first"
    elif cmd.action == Action.VERIFY:
        if not b.ctx.cfg.mx:
            refused = "no backup MX configured"
        elif b.ctx.mx_job is not None:
            refused = "an MX action is already running"
        else:
            b.mx("verify")
    elif b.ctx.router_job is not None:
        refused = "a router action is in flight"
    elif cmd.action == Action.FAILOVER:
        if state in (State.PRIMARY, State.FAULT):
            b.apply(Circuit.BACKUP, State.FAILING_OVER, why)
        else:
            refused = f"not possible in state {state.value}"
    elif cmd.action == Action.FAILBACK:
        if state in (State.BACKUP, State.FAULT):
            b.set(trial=False)
            b.apply(Circuit.PRIMARY, State.FAILING_BACK, why)
        else:
            refused = f"not possible in state {state.value}"
    b.note("command", why + (f" — refused: {refused}" if refused else ""),
           action=cmd.action.value, source=cmd.source, accepted=refused is None)


def _resume(b: _Builder, why: str) -> str | None:
    if b.ctx.state != State.HELD:
        if b.ctx.state == State.FAULT and b.ctx.router_job is None:
            _retry(b)
            return None
        return "not held"
    if b.ctx.router_job is not None:
        return "a router action is still in flight; resume when it is done"
    circuit = b.ctx.circuit
    if circuit == Circuit.PRIMARY:
        b.enter_primary(why)
    elif circuit == Circuit.BACKUP:
        b.go(State.BACKUP, why)
        if b.ctx.backup_since is None:
            b.enter_backup(why)
    else:
        b.go(State.STARTING, why)
        b.read_router()
    return None


_COMMON: dict[type[Any], Handler] = {
    Tick: _tick,
    PrimaryDown: _primary_down,
    PrimaryUp: _primary_up,
    MailPathChanged: _mail_path,
    RouterResult: _router_result,
    MxResult: _mx_result,
    Command: _command,
}

# Per-state overrides of the common handlers: `held` ignores time and the monitor except
# for recording health; it acts on nothing (commands other than resume are refused).
_IGNORE: Handler = lambda b, ev: None  # noqa: E731


def _held_health(b: _Builder, ev: PrimaryDown | PrimaryUp) -> None:
    b.set(primary_link=LinkHealth.DOWN if isinstance(ev, PrimaryDown) else LinkHealth.UP)


def _held_mail(b: _Builder, ev: MailPathChanged) -> None:
    b.set(mail_path=MailPath.OK if ev.ok else MailPath.FAILING)


TABLE: dict[tuple[State, type[Any]], Handler] = {
    (State.HELD, Tick): _IGNORE,
    (State.HELD, PrimaryDown): _held_health,
    (State.HELD, PrimaryUp): _held_health,
    (State.HELD, MailPathChanged): _held_mail,
}


def start(cfg: MachineConfig, now: float, failbacks: tuple[float, ...] = ()) -> Decision:
    """The first decision: read the router, which is the truth about where we are.

    `failbacks` (on the caller's clock) carries the flap history across a restart.
    """
    b = _Builder(Context(cfg=cfg, since=now, failbacks=failbacks), now)
    b.read_router()
    return b.done()


def step(ctx: Context, event: Event, now: float) -> Decision:
    b = _Builder(ctx, now)
    handler = TABLE.get((ctx.state, type(event))) or _COMMON[type(event)]
    handler(b, event)
    return b.done()
