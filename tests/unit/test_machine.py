"""The state machine, driven with plain events and times: no mocks, no clock."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from daemon.config import BackupMxConfig, Config
from daemon.machine import (
    ALLOWED,
    RULES,
    ApplyWan,
    BackupDown,
    BackupUp,
    Cause,
    Command,
    Context,
    DnsChecked,
    FlushMx,
    MachineConfig,
    MailPathChanged,
    MxJob,
    MxResult,
    PrimaryDown,
    PrimaryUp,
    ProbePlan,
    ProbeVia,
    ReadRouter,
    RepairMx,
    RouterJob,
    RouterResult,
    Tick,
    TransitionNotAllowed,
    VerifyMx,
    hold_down,
    machine_config,
    probe_plan,
    start,
    step,
)
from daemon.machine_builder import Builder
from daemon.model import Action, Circuit, LinkHealth, MailPath, OperatorCommand, State
from tests.harness import config_dict
from tests.unit.machine_setup import cmd, machine_cfg, on, only

CFG = machine_cfg(hold_down=300, hold_down_max=3600, flap_window=3600, mx=True)


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


def test_failback_onto_a_primary_the_monitor_sees_down_is_refused_with_the_evidence() -> None:
    cfg = replace(CFG, failback_mode="auto", mx=False)
    ctx = step(on(cfg, Circuit.BACKUP), PrimaryDown({"summary": "3/3 targets lost"}), 5.0).ctx
    d = step(ctx, cmd(Action.FAILBACK, "line fixed?"), 10.0)
    assert d.ctx.state == State.BACKUP and not d.actions
    [note] = d.notes
    assert note.detail["accepted"] is False
    assert "the monitor sees the primary circuit down: 3/3 targets lost" in note.reason


def test_a_forced_failback_moves_onto_a_primary_seen_down() -> None:
    cfg = replace(CFG, failback_mode="auto", mx=False)
    ctx = step(on(cfg, Circuit.BACKUP), PrimaryDown({"summary": "3/3 targets lost"}), 5.0).ctx
    forced = Command(OperatorCommand(Action.FAILBACK, "I know", "test", force=True))
    assert step(ctx, forced, 10.0).ctx.state == State.FAILING_BACK


def test_a_failback_is_not_refused_on_a_verdict_nobody_probes_any_more() -> None:
    """Manual failback: on backup the primary is not probed, its last verdict is old."""
    ctx = step(on(CFG, Circuit.PRIMARY), PrimaryDown(), 5.0).ctx
    ctx = step(ctx, RouterResult(ctx.router_job or 0, True, Circuit.BACKUP), 6.0).ctx
    ctx = replace(ctx, state=State.BACKUP, mx_job=None, mx_job_kind=None)
    assert ctx.primary_link == LinkHealth.DOWN and not probe_plan(ctx).probe
    assert step(ctx, cmd(Action.FAILBACK), 10.0).ctx.state == State.FAILING_BACK


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


def test_a_failed_apply_still_wanted_after_hold_resume_and_a_failed_read() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, PrimaryDown(), 1.0)
    apply = only(d, ApplyWan)
    d = step(d.ctx, cmd(Action.HOLD), 2.0)
    d = step(d.ctx, RouterResult(apply.action_id, True, Circuit.UNKNOWN), 3.0)
    d = step(d.ctx, cmd(Action.RESUME), 4.0)
    assert d.ctx.state == State.STARTING
    d = step(d.ctx, RouterResult(only(d, ReadRouter).action_id, False, detail="refused"), 5.0)
    assert d.ctx.state == State.FAULT
    d = step(d.ctx, Tick(), 100.0)  # the retry goes where the failed apply wanted to go
    assert only(d, ApplyWan).circuit == Circuit.BACKUP
    assert d.transitions[0].reason == "retry 1: failover"


# -- the table ------------------------------------------------------------------------


def test_every_state_has_a_row_and_what_a_row_leaves_out_is_the_documented_gaps() -> None:
    assert set(RULES) == set(State)
    events = {Tick, PrimaryDown, PrimaryUp, BackupDown, BackupUp, DnsChecked,
              MailPathChanged, RouterResult, MxResult, Command}
    ignored = {(s, e) for s in State for e in events if e not in RULES[s]}
    assert all(set(row) <= events for row in RULES.values())
    assert ignored == {
        (State.STARTING, Tick), (State.FAILING_OVER, Tick), (State.FAILING_BACK, Tick),
        (State.HELD, Tick), (State.PRIMARY, RouterResult), (State.BACKUP, RouterResult)}


def test_an_ignored_event_changes_nothing() -> None:
    ctx = on(CFG, Circuit.PRIMARY)
    d = step(ctx, RouterResult(ctx.next_id - 1, True, Circuit.BACKUP), 5.0)
    assert (d.ctx, d.actions, d.transitions, d.notes) == (ctx, (), (), ())


def test_the_builder_refuses_a_transition_that_is_not_allowed() -> None:
    assert State.BACKUP not in ALLOWED[State.PRIMARY]
    b = Builder(on(CFG, Circuit.PRIMARY), 1.0, ALLOWED)
    with pytest.raises(TransitionNotAllowed, match="primary -> backup"):
        b.go(State.BACKUP, "a router on backup is never seen from primary", Cause.ROUTER)
    assert b.transitions == []
    assert all(s not in ALLOWED[s] for s in State)  # a transition changes the state


def test_causes_are_the_metrics_label_vocabulary() -> None:
    assert [c.value for c in Cause] == [
        "primary_down", "primary_up", "trial", "retry", "router", "action_failed", "operator",
        "backup_down"]


def test_job_kinds_are_strings_in_the_status_json() -> None:
    assert [k.value for k in RouterJob] == ["read", "apply"]
    assert [k.value for k in MxJob] == ["verify", "repair", "flush"]
    d = start(CFG, 0.0)
    assert json.dumps({"router_action": d.ctx.router_job_kind}) == '{"router_action": "read"}'
    d = step(d.ctx, RouterResult(only(d, ReadRouter).action_id, True, Circuit.BACKUP), 1.0)
    assert json.dumps({"mx_action": d.ctx.mx_job_kind}) == '{"mx_action": "verify"}'


# -- feedback to the supervisor -------------------------------------------------------


def test_the_monitor_is_reset_when_the_router_moved_or_was_found() -> None:
    d = start(CFG, 0.0)
    assert not d.reset_monitor
    d = step(d.ctx, RouterResult(only(d, ReadRouter).action_id, True, Circuit.PRIMARY), 1.0)
    assert d.reset_monitor  # starting -> primary: found
    d = step(d.ctx, PrimaryDown(), 2.0)
    assert not d.reset_monitor  # primary -> failing_over: not moved yet
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP), 3.0)
    assert not d.reset_monitor  # on backup, but `backup` waits for the MX check
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, True), 4.0)
    assert d.reset_monitor  # failing_over -> backup
    d = step(d.ctx, cmd(Action.HOLD), 5.0)
    d = step(d.ctx, cmd(Action.RESUME), 6.0)
    assert [t.to_state for t in d.transitions] == [State.BACKUP]
    assert not d.reset_monitor  # held -> backup: the router did not move


def test_the_probe_plan_follows_the_circuit_and_the_failback_mode() -> None:
    primary = ProbePlan(True, ProbeVia.PRIMARY, backup=False, dns=True)
    assert start(CFG, 0.0).probe == ProbePlan(True, ProbeVia.PRIMARY)
    assert probe_plan(on(CFG, Circuit.PRIMARY)) == primary
    ctx = on(CFG, Circuit.BACKUP)
    # manual: the primary has no path to be probed through; the backup circuit is probed
    assert probe_plan(ctx) == ProbePlan(False, None, backup=True)
    auto = replace(ctx, cfg=replace(CFG, failback_mode="auto"))
    assert probe_plan(auto) == ProbePlan(True, ProbeVia.FAILBACK, backup=True)
    d = step(ctx, cmd(Action.FAILBACK), 1.0)
    assert (d.ctx.state, d.probe) == (State.FAILING_BACK, ProbePlan(False, None))
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 2.0)
    assert d.probe == primary
    # a fault with the router on backup probes as on backup
    assert probe_plan(replace(ctx, state=State.FAULT)) == ProbePlan(False, None, backup=True)


# -- configuration --------------------------------------------------------------------


def test_machine_config_takes_every_value_from_the_config(tmp_path: Path) -> None:
    mx = {"host": "mx.example.net", "key_file": str(tmp_path / "k"),
          "known_hosts": str(tmp_path / "kh"), "domain": "example.net",
          "nexthop": "smtp:[192.0.2.1]:25", "repair": True, "flush": False,
          "verify_interval": 120.0, "reflush_after": 10.0}
    cfg = Config.model_validate(config_dict(
        failback={"mode": "trial", "hold_down": 30.0, "hold_down_max": 90.0,
                  "flap_window": 600.0, "trial_interval": 300.0, "trial_check": 20.0},
        actions={"retry_initial": 2.0, "retry_max": 60.0}, backup_mx=mx,
        backup_link={"enabled": False}))
    assert machine_config(cfg) == MachineConfig(
        failback_mode="trial", hold_down=30.0, hold_down_max=90.0, flap_window=600.0,
        trial_interval=300.0, trial_check=20.0, retry_initial=2.0, retry_max=60.0,
        mx=True, repair=True, flush=False, verify_interval=120.0, reflush_after=10.0,
        backup_link=False)


def test_without_a_backup_mx_the_mx_fields_are_the_sections_defaults_and_unused() -> None:
    got = machine_config(Config.model_validate(config_dict()))
    defaults = BackupMxConfig.model_fields
    assert not got.mx
    assert (got.repair, got.flush, got.verify_interval, got.reflush_after) == tuple(
        defaults[k].default for k in ("repair", "flush", "verify_interval", "reflush_after"))
    d = on(got, Circuit.BACKUP)
    assert d.mx_job is None and step(d, Tick(), 10_000.0).actions == ()
