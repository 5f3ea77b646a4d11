"""The machine and the world outside the office: the backup circuit's own health, the
DNS checks' verdicts, and the flush that follows a failback. Plain events and times."""

from __future__ import annotations

from dataclasses import replace

from daemon.machine import (
    AbandonMx,
    ApplyWan,
    BackupDown,
    BackupUp,
    Cause,
    Context,
    Decision,
    DnsChecked,
    FlushMx,
    MachineConfig,
    MxResult,
    PrimaryDown,
    RouterResult,
    Tick,
    VerifyMx,
    step,
)
from daemon.model import Action, Circuit, DnsHealth, EventKind, LinkHealth, State
from tests.unit.machine_setup import cmd, machine_cfg, on, only

MANUAL = machine_cfg(hold_down=300, mx=True)
TRIAL = replace(MANUAL, failback_mode="trial", trial_interval=900)
DOWN = BackupDown({"summary": "0/2 targets answered", "loss": 1.0})


def alarms(d: Decision) -> list[str]:
    return [n.reason for n in d.notes if n.kind == EventKind.PROBE_ALARM]


def on_backup(cfg: MachineConfig = MANUAL) -> Context:
    ctx = on(cfg, Circuit.BACKUP)
    return replace(ctx, mx_job=None, mx_job_kind=None)  # the start's verify has ended


# -- the backup circuit -----------------------------------------------------------------


def test_the_backup_circuit_dying_too_is_the_both_circuits_down_alarm() -> None:
    d = step(on_backup(), DOWN, 10.0)
    assert alarms(d) == ["both circuits down: the backup circuit is down too: "
                         "0/2 targets answered"]
    assert d.ctx.backup_link == LinkHealth.DOWN
    assert d.notes[0].detail["loss"] == 1.0


def test_manual_mode_only_raises_the_alarm() -> None:
    d = step(on_backup(), DOWN, 10.0)
    assert d.ctx.state == State.BACKUP and not d.actions


def test_trial_mode_tries_the_primary_at_once_instead_of_after_the_hold_down() -> None:
    d = step(on_backup(TRIAL), DOWN, 10.0)   # the hold-down (300 s) is far away
    apply = only(d, ApplyWan)
    assert apply.circuit == Circuit.PRIMARY and d.ctx.state == State.FAILING_BACK
    (t,) = d.transitions
    assert t.cause == Cause.BACKUP_DOWN and t.reason.startswith("both circuits down")


def test_auto_mode_tries_the_primary_at_once_too() -> None:
    d = step(on_backup(replace(TRIAL, failback_mode="auto")), DOWN, 10.0)
    assert only(d, ApplyWan).circuit == Circuit.PRIMARY


def test_two_dead_circuits_are_tried_once_per_hold_down_not_in_a_loop() -> None:
    d = step(on_backup(TRIAL), DOWN, 10.0)
    # the primary is dead too: back to backup, where the backup is still dead
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 20.0)
    d = step(replace(d.ctx, mx_job=None, mx_job_kind=None), PrimaryDown(), 23.0)
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.BACKUP), 30.0)
    d = step(d.ctx, MxResult(d.ctx.mx_job or 0, False, "unreachable"), 31.0)
    assert d.ctx.state == State.BACKUP
    d = step(d.ctx, DOWN, 34.0)
    assert not any(isinstance(a, ApplyWan) for a in d.actions)   # tried 24 s ago
    # the hold-down has doubled (one failback in the flap window): 600 s after the try
    assert not any(isinstance(a, ApplyWan) for a in step(d.ctx, Tick(), 500.0).actions)
    assert only(step(d.ctx, Tick(), 611.0), ApplyWan).circuit == Circuit.PRIMARY


def test_the_backup_circuit_coming_back_is_an_alarm_too() -> None:
    d = step(step(on_backup(), DOWN, 10.0).ctx, BackupUp({"summary": "2/2"}), 20.0)
    assert alarms(d) == ["backup circuit up again: 2/2"]
    assert d.ctx.backup_link == LinkHealth.UP


def test_a_first_up_verdict_is_no_alarm() -> None:
    d = step(on_backup(), BackupUp(), 10.0)
    assert alarms(d) == [] and d.ctx.backup_link == LinkHealth.UP


def test_leaving_the_backup_circuit_makes_its_health_unknown() -> None:
    d = step(step(on_backup(), BackupUp(), 10.0).ctx, cmd(Action.FAILBACK), 11.0)
    assert d.ctx.backup_link == LinkHealth.UNKNOWN


def test_held_records_the_backup_circuit_without_alarm_or_action() -> None:
    held = step(on_backup(TRIAL), cmd(Action.HOLD), 5.0).ctx
    d = step(held, DOWN, 10.0)
    assert (d.ctx.backup_link, d.notes, d.actions) == (LinkHealth.DOWN, (), ())


# -- the DNS checks ---------------------------------------------------------------------


def test_failing_dns_checks_are_an_alarm_with_the_records_as_evidence() -> None:
    records = {"checks": [{"name": "dns_mx", "records": ["10 mx.customer.example."]}]}
    d = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.FAILING, "dns_mx: ...",
                                                     records), 10.0)
    assert alarms(d) == ["DNS check failed: dns_mx: ..."]
    assert d.notes[0].detail == records and d.ctx.dns == DnsHealth.FAILING


def test_dns_failing_again_is_no_second_alarm() -> None:
    ctx = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.FAILING), 10.0).ctx
    assert alarms(step(ctx, DnsChecked(DnsHealth.FAILING), 20.0)) == []


def test_no_answer_from_the_resolver_is_unknown_and_no_alarm() -> None:
    d = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.UNKNOWN, "timeout"), 10.0)
    assert d.ctx.dns == DnsHealth.UNKNOWN and alarms(d) == []


def test_a_run_without_answer_between_two_failing_runs_is_no_second_alarm() -> None:
    ctx = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.FAILING), 10.0).ctx
    ctx = step(ctx, DnsChecked(DnsHealth.UNKNOWN), 20.0).ctx
    assert alarms(step(ctx, DnsChecked(DnsHealth.FAILING), 30.0)) == []


def test_passing_after_failing_is_an_alarm_even_with_a_run_without_answer_between() -> None:
    ctx = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.FAILING), 10.0).ctx
    ctx = step(ctx, DnsChecked(DnsHealth.UNKNOWN), 20.0).ctx
    assert alarms(step(ctx, DnsChecked(DnsHealth.OK), 30.0)) == ["DNS checks pass again"]


def test_dns_passing_after_failing_is_an_alarm() -> None:
    ctx = step(on(MANUAL, Circuit.PRIMARY), DnsChecked(DnsHealth.FAILING), 10.0).ctx
    d = step(ctx, DnsChecked(DnsHealth.OK), 20.0)
    assert alarms(d) == ["DNS checks pass again"] and d.ctx.dns == DnsHealth.OK


# -- a failback that delivers too -------------------------------------------------------


def failed_back(cfg: MachineConfig = MANUAL) -> Decision:
    d = step(on_backup(cfg), cmd(Action.FAILBACK), 100.0)
    return step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY),
                160.0)


def test_a_failback_verifies_the_backup_mx_then_flushes_its_queue() -> None:
    d = failed_back()
    assert d.ctx.state == State.PRIMARY
    verify = only(d, VerifyMx)
    d = step(d.ctx, MxResult(verify.action_id, True), 161.0)
    assert only(d, FlushMx)


def test_a_failed_verify_after_failback_is_tried_again_then_flushed() -> None:
    d = failed_back()
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, False, "tunnel down"), 161.0)
    assert not d.actions
    assert step(d.ctx, Tick(), 165.0).actions == ()   # retry_initial is 5 s
    d = step(d.ctx, Tick(), 166.0)
    d = step(d.ctx, MxResult(only(d, VerifyMx).action_id, True), 167.0)
    assert only(d, FlushMx)


def test_after_failback_the_flush_is_owed_only_for_a_while() -> None:
    d = failed_back()
    ctx = step(d.ctx, MxResult(only(d, VerifyMx).action_id, False, "tunnel down"), 161.0).ctx
    d = step(ctx, Tick(), 160.0 + MANUAL.verify_interval)
    assert not d.actions and not d.ctx.failback_flush
    assert "not flushed" in d.notes[0].reason


def test_without_flush_a_failback_verifies_nothing() -> None:
    d = failed_back(replace(MANUAL, flush=False))
    assert d.ctx.state == State.PRIMARY and not d.actions


# -- MX actions when the router moves ---------------------------------------------------


def test_a_move_abandons_the_mx_action_in_flight_so_the_next_checks_need_not_wait() -> None:
    ctx = on(MANUAL, Circuit.BACKUP)   # its start verifies the MX: still in flight
    verify = ctx.mx_job
    assert verify is not None
    d = step(ctx, cmd(Action.FAILBACK), 10.0)
    assert AbandonMx(verify) in d.actions and d.ctx.mx_job is None
    d = step(d.ctx, RouterResult(only(d, ApplyWan).action_id, True, Circuit.PRIMARY), 20.0)
    assert only(d, VerifyMx)   # the failback's own check starts at once
    # the abandoned one's late result is stale: it changes nothing
    late = step(d.ctx, MxResult(verify, False, "cut"), 21.0)
    assert (late.ctx, late.actions, late.notes) == (d.ctx, (), ())
