"""Property tests: random event sequences never break the machine's invariants."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.machine import (
    ApplyWan,
    Command,
    Context,
    MachineConfig,
    MailPathChanged,
    MxAction,
    MxResult,
    PrimaryDown,
    PrimaryUp,
    ReadRouter,
    RouterResult,
    Tick,
    start,
    step,
)
from daemon.model import Action, Circuit, OperatorCommand, State
from tests.unit.machine_setup import machine_cfg

configs = st.builds(
    machine_cfg,
    failback_mode=st.sampled_from(["manual", "auto", "trial"]),
    hold_down=st.sampled_from([0.0, 5.0, 60.0]),
    hold_down_max=st.sampled_from([60.0, 600.0]),
    trial_interval=st.sampled_from([30.0, 120.0]),
    trial_check=st.sampled_from([5.0, 20.0]),
    mx=st.booleans(),
    repair=st.booleans(),
    flush=st.booleans(),
)

# What happens next: the world's events, or the executor finishing what is in flight.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.floats(0.0, 400.0)),
        st.tuples(st.just("down"), st.floats(0.0, 5.0)),
        st.tuples(st.just("up"), st.floats(0.0, 5.0)),
        st.tuples(st.just("mail"), st.booleans()),
        st.tuples(st.just("router_done"), st.sampled_from(["ok", "fail", "unknown"])),
        st.tuples(st.just("mx_done"), st.booleans()),
        st.tuples(st.just("cmd"), st.sampled_from(list(Action))),
        st.tuples(st.just("stale"), st.integers(1000, 2000)),
    ),
    max_size=60,
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
    mx_actions = [a for a in actions if not isinstance(a, ApplyWan | ReadRouter)]
    # never two router actions in flight, never two MX actions
    assert len(router_actions) <= 1
    assert not (router_actions and world.router is not None)
    assert len(mx_actions) <= 1
    assert not (mx_actions and world.mx is not None)
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
    # every transition has a reason and really changes state
    for t in transitions:
        assert t.reason  # type: ignore[attr-defined]
        assert t.from_state != t.to_state  # type: ignore[attr-defined]
    if after.state != before.state:
        assert transitions


@settings(max_examples=400, deadline=None)
@given(cfg=configs, script=steps)
def test_random_event_sequences_keep_the_invariants(cfg: MachineConfig, script: list) -> None:
    now = 0.0
    d = start(cfg, now)
    world = World()
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
            event = Command(OperatorCommand(arg, "prop", "test"))
        else:
            event = RouterResult(arg, True, Circuit.BACKUP)
        d = step(ctx, event, now)  # type: ignore[arg-type]
        check(ctx, d.ctx, d.actions, world, d.transitions)
        for a in d.actions:
            if isinstance(a, ApplyWan | ReadRouter):
                world.router = a
            else:
                world.mx = a
        # the machine's own bookkeeping agrees with what is in flight
        assert (d.ctx.router_job is None) == (world.router is None)
        assert (d.ctx.mx_job is None) == (world.mx is None)
        ctx = d.ctx
