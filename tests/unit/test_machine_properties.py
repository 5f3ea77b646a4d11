"""Property tests: random event sequences never break the machine's invariants.

The invariants are those listed in daemon/machine.py's docstring, plus: each transition's
cause is the label that the reason's text used to be parsed into (`_reason_kind`, a
private copy of what daemon/app.py did), so the metrics keep their labels byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.machine import (
    ALLOWED,
    AbandonMx,
    ApplyWan,
    BackupDown,
    BackupUp,
    Command,
    Context,
    Decision,
    DnsChecked,
    MachineConfig,
    MailPathChanged,
    MxAction,
    MxResult,
    PrimaryDown,
    PrimaryUp,
    ProbePlan,
    ProbeVia,
    ReadRouter,
    RouterJob,
    RouterResult,
    Tick,
    Transition,
    start,
    step,
)
from daemon.model import Action, Circuit, DnsHealth, OperatorCommand, State
from tests.unit.machine_setup import machine_cfg

configs = st.builds(
    machine_cfg,
    failback_mode=st.sampled_from(["manual", "auto", "trial"]),
    hold_down=st.sampled_from([0.0, 5.0, 60.0]),
    hold_down_max=st.sampled_from([60.0, 600.0]),
    trial_interval=st.sampled_from([30.0, 120.0]),
    trial_check=st.sampled_from([5.0, 20.0]),
    mx=st.booleans(),
    backup_link=st.booleans(),
    repair=st.booleans(),
    flush=st.booleans(),
    reflush_after=st.sampled_from([0.0, 3.0]),
    verify_interval=st.sampled_from([10.0, 300.0]),
)

# What happens next: the world's events, or the executor finishing what is in flight
# (twice as likely as the others, so that runs get deep into failovers and failbacks).
_done = st.one_of(
    st.tuples(st.just("router_done"), st.sampled_from(["ok", "ok", "fail", "unknown"])),
    st.tuples(st.just("mx_done"), st.booleans()),
)
steps = st.lists(
    st.one_of(
        _done, _done,
        st.tuples(st.just("tick"), st.floats(0.0, 400.0)),
        st.tuples(st.just("down"), st.floats(0.0, 5.0)),
        st.tuples(st.just("up"), st.floats(0.0, 5.0)),
        st.tuples(st.just("mail"), st.booleans()),
        st.tuples(st.just("backup"), st.booleans()),
        st.tuples(st.just("dns"), st.sampled_from(list(DnsHealth))),
        st.tuples(st.just("cmd"), st.tuples(st.sampled_from(list(Action)),
                                            st.sampled_from(["", "prop", "line: fixed"]),
                                            st.sampled_from(["test", "uid 1000", "a:b"]))),
        st.tuples(st.just("stale"), st.integers(1000, 2000)),
    ),
    min_size=10, max_size=80,
)


@dataclass
class World:
    """Tracks what the executor would have in flight, to feed results back."""

    router: ApplyWan | ReadRouter | None = None
    mx: MxAction | None = None
    circuit: Circuit = Circuit.PRIMARY
    log: list[str] = field(default_factory=list)


def check(before: Context, after: Context, actions: tuple[object, ...], world: World,
          transitions: tuple[object, ...]) -> None:
    router_actions = [a for a in actions if isinstance(a, ApplyWan | ReadRouter)]
    abandoned = [a for a in actions if isinstance(a, AbandonMx)]
    mx_actions = [a for a in actions if not isinstance(a, ApplyWan | ReadRouter | AbandonMx)]
    # never two router actions in flight, never two MX actions: an MX action is
    # abandoned (the one in flight) only when the router moves
    assert len(router_actions) <= 1
    assert not (router_actions and world.router is not None)
    assert len(mx_actions) <= 1 and len(abandoned) <= 1
    if abandoned:
        assert world.mx is not None and abandoned[0].action_id == world.mx.action_id
        assert any(isinstance(a, ApplyWan) for a in actions)
    assert not (mx_actions and world.mx is not None and not abandoned)
    # held never acts
    if after.state == State.HELD:
        assert actions == ()
    # the router is only changed on entering failing_over/failing_back
    for a in router_actions:
        if isinstance(a, ApplyWan):
            assert after.state in (State.FAILING_OVER, State.FAILING_BACK)
            expected = Circuit.BACKUP if after.state == State.FAILING_OVER else Circuit.PRIMARY
            assert a.circuit == expected
        else:
            assert after.state in (State.STARTING, State.FAULT)
    # every transition is allowed, has a reason and the cause its reason used to be
    # parsed into, and really changes state; transitions chain
    state = before.state
    for t in transitions:
        assert isinstance(t, Transition)
        assert t.from_state == state and t.to_state in ALLOWED[t.from_state]
        assert t.reason and t.cause == _reason_kind(t.reason)
        assert t.from_state != t.to_state
        state = t.to_state
    assert state == after.state
    # the router job in flight fits the state
    kind = after.router_job_kind
    assert (kind is None) == (after.router_job is None)
    if after.state in (State.PRIMARY, State.BACKUP):
        assert kind is None
    elif after.state in (State.STARTING, State.FAULT):
        assert kind in (None, RouterJob.READ)
    elif after.state == State.FAILING_BACK:
        assert kind == RouterJob.APPLY
    elif after.state == State.FAILING_OVER:
        assert kind in (None, RouterJob.APPLY)


def check_feedback(d: object) -> None:
    """reset_monitor and the probe plan, as the supervisor used to derive them."""
    assert isinstance(d, Decision)
    assert d.reset_monitor == any(
        t.to_state in (State.PRIMARY, State.BACKUP) and t.from_state in (
            State.FAILING_OVER, State.FAILING_BACK, State.STARTING, State.FAULT)
        for t in d.transitions)
    ctx = d.ctx
    on_backup = ctx.circuit == Circuit.BACKUP or ctx.state in (State.BACKUP,
                                                               State.FAILING_BACK)
    # the backup circuit is probed only while the router stays on it; DNS on primary
    backup = ctx.cfg.backup_link and ctx.circuit == Circuit.BACKUP and ctx.state in (
        State.BACKUP, State.HELD, State.FAULT)
    dns = ctx.state == State.PRIMARY
    if not on_backup:
        assert d.probe == ProbePlan(True, ProbeVia.PRIMARY, backup, dns)
    elif ctx.cfg.failback_mode == "auto":
        assert d.probe == ProbePlan(True, ProbeVia.FAILBACK, backup, dns)
    else:
        assert d.probe == ProbePlan(False, None, backup, dns)


def _reason_kind(reason: str) -> str:
    """daemon/app.py's reason_kind() as it was: the metrics label parsed from a reason."""
    for prefix, kind in (("primary down", "primary_down"), ("trial", "trial"),
                         ("retry", "retry"), ("router", "router"), ("cannot read", "router"),
                         ("failover failed", "action_failed"),
                         ("failback failed", "action_failed"), ("primary up", "primary_up"),
                         ("both circuits down", "backup_down")):
        if reason.startswith(prefix):
            return kind
    if " by " in reason.split(":")[0]:
        return "operator"
    return "other"


@settings(max_examples=600, deadline=None)
@given(cfg=configs, script=steps, circuit=st.sampled_from([Circuit.PRIMARY, Circuit.BACKUP]))
def test_random_event_sequences_keep_the_invariants(
        cfg: MachineConfig, script: list[tuple[str, Any]], circuit: Circuit) -> None:
    now = 0.0
    d = start(cfg, now)
    check_feedback(d)
    world = World(circuit=circuit)  # where the router is at start
    world.router = d.actions[0]  # type: ignore[assignment]
    ctx = d.ctx
    for kind, arg in script:
        if kind == "tick":
            now += arg
            event: object = Tick()
        elif kind == "down":
            now += arg
            event = PrimaryDown({"summary": "test"})
        elif kind == "up":
            now += arg
            event = PrimaryUp()
        elif kind == "mail":
            event = MailPathChanged(arg)
        elif kind == "backup":
            event = BackupUp() if arg else BackupDown({"summary": "test"})
        elif kind == "dns":
            event = DnsChecked(arg, "test")
        elif kind == "router_done":
            if world.router is None:
                continue
            job = world.router
            if arg == "ok":
                circuit = job.circuit if isinstance(job, ApplyWan) else world.circuit
                world.circuit = circuit
                event = RouterResult(job.action_id, True, circuit)
            elif arg == "unknown":
                event = RouterResult(job.action_id, True, Circuit.UNKNOWN)
            else:
                event = RouterResult(job.action_id, False, detail="refused")
            world.router = None
        elif kind == "mx_done":
            if world.mx is None:
                continue
            event = MxResult(world.mx.action_id, arg)
            world.mx = None
        elif kind == "cmd":
            event = Command(OperatorCommand(*arg))
        else:
            event = RouterResult(arg, True, Circuit.BACKUP)
        d = step(ctx, event, now)  # type: ignore[arg-type]
        check(ctx, d.ctx, d.actions, world, d.transitions)
        check_feedback(d)
        for a in d.actions:
            if isinstance(a, ApplyWan | ReadRouter):
                world.router = a
            elif isinstance(a, AbandonMx):
                world.mx = None
            else:
                world.mx = a
        # the machine's own bookkeeping agrees with what is in flight
        assert (d.ctx.router_job is None) == (world.router is None)
        assert (d.ctx.mx_job is None) == (world.mx is None)
        ctx = d.ctx
