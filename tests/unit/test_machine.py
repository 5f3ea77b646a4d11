"""The state machine, driven with plain events and times: no mocks, no clock."""

from __future__ import annotations

import itertools
from dataclasses import replace

from daemon.machine import (
    ApplyWan,
    Command,
    Context,
    Decision,
    FlushMx,
    MachineConfig,
    MailPathChanged,
    MxResult,
    PrimaryDown,
    PrimaryUp,
    ReadRouter,
    RepairMx,
    RouterResult,
    Tick,
    VerifyMx,
    hold_down,
    start,
    step,
)
from daemon.model import Action, Circuit, LinkHealth, MailPath, OperatorCommand, State
from tests.unit.machine_setup import machine_cfg

CFG = machine_cfg(hold_down=300, hold_down_max=3600, flap_window=3600, mx=True)


def cmd(action: Action, reason: str = "") -> Command:
    return Command(OperatorCommand(action, reason, "test"))


def on(cfg: MachineConfig, circuit: Circuit, now: float = 0.0) -> Context:
    d = start(cfg, now)
    (read,) = d.actions
    assert isinstance(read, ReadRouter)
    return step(d.ctx, RouterResult(read.action_id, True, circuit), now).ctx


def only(d: Decision, kind: type) -> object:
    found = [a for a in d.actions if isinstance(a, kind)]
    assert len(found) == 1, d.actions
    return found[0]


def test_start_reads_the_router_first() -> None:
    d = start(CFG, 0.0)
    assert d.ctx.state == State.STARTING
    assert [type(a) for a in d.actions] == [ReadRouter]


def test_router_on_primary_at_start_means_primary() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    assert ctx.state == State.PRIMARY
    assert ctx.circuit == Circuit.PRIMARY


def test_router_on_backup_at_start_resumes_backup_and_verifies_the_mx() -> None:
    d = start(CFG, 0.0)
    d = step(d.ctx, RouterResult(d.actions[0].action_id, True, Circuit.BACKUP), 1.0)
    assert d.ctx.state == State.BACKUP
    assert [type(a) for a in d.actions] == [VerifyMx]


def test_router_matching_neither_config_is_a_fault_and_untouched() -> None:
    d = start(CFG, 0.0)
    d = step(d.ctx, RouterResult(d.actions[0].action_id, True, Circuit.UNKNOWN), 1.0)
    assert d.ctx.state == State.FAULT
    assert not any(isinstance(a, ApplyWan) for a in d.actions)


def test_unreadable_router_is_retried_with_growing_backoff() -> None:
    d = start(CFG, 0.0)
    d = step(d.ctx, RouterResult(d.actions[0].action_id, False, detail="refused"), 0.0)
    assert d.ctx.state == State.FAULT and d.ctx.retry_at == 5.0
    assert step(d.ctx, Tick(), 4.9).actions == ()
    d = step(d.ctx, Tick(), 5.0)
    (read,) = d.actions
    d = step(d.ctx, RouterResult(read.action_id, False, detail="refused"), 5.0)
    assert d.ctx.retry_at == 15.0


def test_primary_down_fails_over_with_reason_and_evidence() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown({"summary": "0/3 targets", "loss": 1.0}), 10.0)
    assert d.ctx.state == State.FAILING_OVER
    apply = only(d, ApplyWan)
    assert isinstance(apply, ApplyWan) and apply.circuit == Circuit.BACKUP
    (t,) = d.transitions
    assert t.reason == "primary down: 0/3 targets"
    assert t.evidence["loss"] == 1.0


def test_backup_is_announced_only_after_the_mx_was_verified() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    apply = only(d, ApplyWan)
    d = step(d.ctx, RouterResult(apply.action_id, True, Circuit.BACKUP), 12.0)
    assert d.ctx.state == State.FAILING_OVER
    verify = only(d, VerifyMx)
    d = step(d.ctx, MxResult(verify.action_id, True), 13.0)
    assert d.ctx.state == State.BACKUP
    assert d.ctx.mail_path == MailPath.OK
    assert isinstance(only(d, FlushMx), FlushMx)


def test_failed_mx_check_still_enters_backup_but_reports_mail_path_failing() -> None:
    ctx = on(replace(CFG, repair=True), Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP), 12.0)
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, False, "transport_source"), 13.0)
    assert d.ctx.state == State.BACKUP
    assert d.ctx.mail_path == MailPath.FAILING
    assert "transport_source" in d.ctx.reason
    assert isinstance(only(d, RepairMx), RepairMx)


def test_without_mx_backup_follows_the_router() -> None:
    ctx = on(replace(CFG, mx=False), Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP), 12.0)
    assert d.ctx.state == State.BACKUP


def test_failed_apply_goes_to_fault_and_retries_the_failover() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, False, detail="timeout"), 11.0)
    assert d.ctx.state == State.FAULT
    assert "timeout" in d.ctx.reason
    d = step(d.ctx, Tick(), 16.0)
    assert d.ctx.state == State.FAILING_OVER
    assert only(d, ApplyWan).circuit == Circuit.BACKUP


def test_fault_retry_goes_home_when_the_primary_came_back() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, False, detail="timeout"), 11.0)
    d = step(d.ctx, PrimaryUp(), 12.0)
    d = step(d.ctx, Tick(), 16.0)
    assert only(d, ApplyWan).circuit == Circuit.PRIMARY


def test_primary_down_on_backup_is_not_a_new_failure() -> None:
    ctx = on(CFG, Circuit.BACKUP)
    d = step(ctx, PrimaryDown(), 10.0)
    assert d.ctx.state == State.BACKUP
    assert not any(isinstance(a, ApplyWan) for a in d.actions)


def test_manual_mode_never_fails_back_by_itself() -> None:
    ctx = on(CFG, Circuit.BACKUP)
    d = step(ctx, PrimaryUp(), 10_000.0)
    d = step(d.ctx, Tick(), 20_000.0)
    assert d.ctx.state == State.BACKUP
    assert not any(isinstance(a, ApplyWan) for a in d.actions)


def test_operator_failback_from_backup() -> None:
    ctx = on(CFG, Circuit.BACKUP)
    d = step(ctx, cmd(Action.FAILBACK, "line fixed"), 10.0)
    assert d.ctx.state == State.FAILING_BACK
    assert "line fixed" in d.ctx.reason
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 11.0)
    assert d.ctx.state == State.PRIMARY
    assert d.ctx.primary_link == LinkHealth.UNKNOWN  # fresh evidence needed


def test_auto_failback_waits_for_the_hold_down() -> None:
    cfg = replace(CFG, failback_mode="auto", mx=False)
    ctx = on(cfg, Circuit.BACKUP, now=0.0)
    d = step(ctx, PrimaryUp(), 100.0)
    assert d.ctx.state == State.BACKUP
    d = step(d.ctx, Tick(), 299.0)
    assert d.ctx.state == State.BACKUP
    d = step(d.ctx, Tick(), 300.0)
    assert d.ctx.state == State.FAILING_BACK


def test_hold_down_doubles_for_a_flapping_primary_and_is_capped() -> None:
    ctx = Context(cfg=CFG)
    assert hold_down(ctx, 0.0) == 300
    assert hold_down(replace(ctx, failbacks=(0.0,)), 10.0) == 600
    assert hold_down(replace(ctx, failbacks=(0.0, 1.0, 2.0, 3.0, 4.0)), 10.0) == 3600
    assert hold_down(replace(ctx, failbacks=(0.0,)), 4000.0) == 300  # outside the window


def test_trial_failback_reverts_when_the_primary_fails_within_the_check() -> None:
    cfg = replace(CFG, failback_mode="trial", trial_interval=900, trial_check=60, mx=False)
    ctx = on(cfg, Circuit.BACKUP, now=0.0)
    d = step(ctx, Tick(), 300.0)
    assert d.ctx.state == State.FAILING_BACK
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 301.0)
    assert d.ctx.trial_until == 361.0
    d = step(d.ctx, PrimaryDown(), 320.0)
    assert d.ctx.state == State.FAILING_OVER
    assert d.ctx.reason.startswith("trial failback failed")


def test_trial_failback_that_holds_is_kept() -> None:
    cfg = replace(CFG, failback_mode="trial", trial_interval=900, trial_check=60, mx=False)
    ctx = on(cfg, Circuit.BACKUP, now=0.0)
    d = step(ctx, Tick(), 300.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 301.0)
    d = step(d.ctx, Tick(), 400.0)
    assert d.ctx.state == State.PRIMARY and d.ctx.trial_until is None


def test_hold_pauses_automation() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, cmd(Action.HOLD, "maintenance"), 1.0)
    assert d.ctx.state == State.HELD
    d = step(d.ctx, PrimaryDown(), 2.0)
    assert d.actions == () and d.ctx.state == State.HELD
    assert d.ctx.primary_link == LinkHealth.DOWN


def test_resume_on_a_dead_primary_fails_over_at_once() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, cmd(Action.HOLD), 1.0)
    d = step(d.ctx, PrimaryDown(), 2.0)
    d = step(d.ctx, cmd(Action.RESUME), 3.0)
    assert d.ctx.state == State.FAILING_OVER
    assert [t.to_state for t in d.transitions] == [State.PRIMARY, State.FAILING_OVER]


def test_commands_while_held_are_refused_and_noted() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, cmd(Action.HOLD), 1.0)
    d = step(d.ctx, cmd(Action.FAILOVER), 2.0)
    assert d.ctx.state == State.HELD and d.actions == ()
    (note,) = d.notes
    assert note.kind == "command" and "refused" in note.reason


def test_failover_command_while_a_router_action_runs_is_refused() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 1.0)
    d = step(d.ctx, cmd(Action.FAILBACK), 2.0)
    assert d.actions == ()
    assert "in flight" in d.notes[-1].reason


def test_stale_router_results_are_ignored() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 1.0)
    stale = step(d.ctx, RouterResult(999, True, Circuit.PRIMARY), 2.0)
    assert stale.ctx == d.ctx


def test_mail_path_failing_on_backup_triggers_a_verification() -> None:
    ctx = on(CFG, Circuit.BACKUP, now=0.0)
    ctx = replace(ctx, mx_job=None, last_verify=None)
    d = step(ctx, MailPathChanged(False, "no banner"), 100.0)
    assert d.ctx.mail_path == MailPath.FAILING
    assert isinstance(only(d, VerifyMx), VerifyMx)


def test_backup_verifies_the_mx_on_a_schedule() -> None:
    ctx = on(replace(CFG, reflush_after=0.0), Circuit.BACKUP, now=0.0)
    d = step(ctx, MxResult(ctx.mx_job or 0, True), 1.0)
    d = step(d.ctx, MxResult(d.ctx.mx_job or 0, True), 2.0)  # the flush
    assert step(d.ctx, Tick(), 200.0).actions == ()
    assert isinstance(only(step(d.ctx, Tick(), 301.0), VerifyMx), VerifyMx)


def test_a_primary_flapping_every_30s_for_10_minutes_bounds_the_router_actions() -> None:
    # auto failback, 60 s hold-down doubling per recent failback; the primary is down for
    # 15 s and up for 15 s, over and over, for ten minutes
    cfg = replace(CFG, failback_mode="auto", hold_down=60, hold_down_max=3600, mx=False)
    ctx = on(cfg, Circuit.PRIMARY, now=0.0)
    applies: list[tuple[float, Circuit]] = []
    now = 0.0
    while now < 600.0:
        phase = now % 30.0
        events: list[object] = [Tick()]
        if phase == 0.0:
            events.append(PrimaryDown({"summary": "flap"}))
        elif phase == 15.0:
            events.append(PrimaryUp({"summary": "flap"}))
        for ev in events:
            d = step(ctx, ev, now)  # type: ignore[arg-type]
            ctx = d.ctx
            for a in d.actions:
                if isinstance(a, ApplyWan):
                    applies.append((now, a.circuit))
                    ctx = step(ctx, RouterResult(a.action_id, True, a.circuit), now).ctx
        now += 0.5
    failbacks = [t for t, c in applies if c == Circuit.PRIMARY]
    # hold-downs of 60 + 120 + 240 s fit in ten minutes; 480 more would not
    assert len(failbacks) <= 3, applies
    assert len(applies) <= 7, applies
    gaps = [b - a for a, b in itertools.pairwise(failbacks)]
    assert all(g2 > g1 for g1, g2 in itertools.pairwise(gaps))


def test_a_second_flush_catches_mail_that_was_mid_delivery_at_failover() -> None:
    cfg = replace(CFG, reflush_after=45.0)
    ctx = on(cfg, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 10.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP), 12.0)
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, True), 13.0)
    d = step(d.ctx, MxResult(only(d, FlushMx).action_id, True), 14.0)
    assert step(d.ctx, Tick(), 58.0).actions == ()
    d = step(d.ctx, Tick(), 59.0)
    flush = only(d, FlushMx)
    d = step(d.ctx, MxResult(flush.action_id, True), 60.0)
    assert step(d.ctx, Tick(), 200.0).actions == ()  # only one extra flush


def test_backup_evidence_carries_each_step_of_the_move_and_how_long_it_took() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown({"summary": "0/3 targets", "detect_s": 2.1}), 10.0)
    steps = {"dialogue": 0.4, "restart_wait": 20.2, "read_back": 0.3, "live_proof": 0.05}
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP,
                                 durations=steps), 31.0)
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, True, seconds=0.7), 31.7)
    (t,) = d.transitions
    assert t.to_state == State.BACKUP
    assert t.evidence["durations_s"] == {"detect": 2.1, **steps, "mx_checks": 0.7}


def test_failback_evidence_carries_the_steps_and_a_new_move_starts_afresh() -> None:
    ctx = on(CFG, Circuit.BACKUP)
    d = step(ctx, cmd(Action.FAILBACK), 100.0)
    steps = {"dialogue": 0.5, "restart_wait": 3.1, "read_back": 0.2, "live_proof": 0.1}
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY,
                                 durations=steps), 104.0)
    (t,) = d.transitions
    assert (t.from_state, t.to_state) == (State.FAILING_BACK, State.PRIMARY)
    assert t.evidence["durations_s"] == steps  # no detection: an operator's command
    d = step(d.ctx, cmd(Action.FAILOVER), 200.0)
    assert d.ctx.durations == ()


def test_a_router_that_runs_the_new_config_but_does_not_route_is_a_fault_on_that_circuit(
        ) -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown({"detect_s": 2.0}), 10.0)
    why = "live proof: router reports the backup WAN but its gateway did not answer"
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, False, Circuit.BACKUP, why,
                                 durations={"dialogue": 0.3, "live_proof": 15.0}), 40.0)
    assert d.ctx.state == State.FAULT
    assert d.ctx.circuit == Circuit.BACKUP  # where the router is, though it does not route
    assert d.ctx.reason == f"failover failed: {why}"
    (t,) = [t for t in d.transitions if t.to_state == State.FAULT]
    assert t.evidence["durations_s"] == {"detect": 2.0, "dialogue": 0.3, "live_proof": 15.0}
    assert not any(isinstance(a, VerifyMx) for a in d.actions)
