"""When a waited-for command has ended (operators.Awaited), judged on the machine's own
decisions: a move when it leaves failing over or back, a verify when its result came."""

from __future__ import annotations

from daemon import machine as m
from daemon.model import Action, Circuit, OperatorCommand, State
from daemon.operators import Awaited
from tests.unit.machine_setup import machine_cfg

CFG = machine_cfg(mx=True)


def on(circuit: Circuit) -> m.Context:
    d = m.start(CFG, 0.0)
    (read,) = d.actions
    return m.step(d.ctx, m.RouterResult(read.action_id, True, circuit), 0.0).ctx


def command(ctx: m.Context, action: Action) -> tuple[Awaited, m.Decision]:
    d = m.step(ctx, m.Command(OperatorCommand(action, "", "test")), 1.0)
    awaited = Awaited.of(action, d)
    assert awaited is not None
    return awaited, d


def test_a_failback_ends_when_the_router_is_back_on_the_primary() -> None:
    awaited, d = command(on(Circuit.BACKUP), Action.FAILBACK)
    tick = m.step(d.ctx, m.Tick(), 1.5)
    assert awaited.finished(m.Tick(), tick) is None      # the apply still runs
    assert d.ctx.router_job is not None
    result = m.RouterResult(d.ctx.router_job, True, Circuit.PRIMARY)
    done = awaited.finished(result, m.step(d.ctx, result, 2.0))
    assert done is not None and done["ok"] is True and done["state"] == "primary"


def test_a_failover_whose_apply_fails_ends_in_fault_and_says_why() -> None:
    awaited, d = command(on(Circuit.PRIMARY), Action.FAILOVER)
    assert d.ctx.router_job is not None
    result = m.RouterResult(d.ctx.router_job, False, detail="router timed out")
    done = awaited.finished(result, m.step(d.ctx, result, 2.0))
    assert done is not None and done["ok"] is False and done["state"] == State.FAULT.value
    assert "router timed out" in done["detail"]


def test_a_verify_ends_with_its_own_result_only() -> None:
    awaited, d = command(on(Circuit.PRIMARY), Action.VERIFY)
    other = m.MxResult(action_id=999, ok=True)
    assert awaited.finished(other, m.step(d.ctx, other, 1.5)) is None
    [verify] = [a for a in d.actions if isinstance(a, m.VerifyMx)]
    result = m.MxResult(verify.action_id, False, "mail_path: timed out")
    done = awaited.finished(result, m.step(d.ctx, result, 2.0))
    assert done == {"ok": False, "state": "primary", "detail": "mail_path: timed out"}


def test_hold_and_resume_are_done_when_accepted() -> None:
    d = m.step(on(Circuit.PRIMARY), m.Command(OperatorCommand(Action.HOLD, "", "t")), 1.0)
    assert Awaited.of(Action.HOLD, d) is None
