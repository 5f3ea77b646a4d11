"""The failover state machine: pure, no I/O, no clock reads (DESIGN §2, §4).

    start(cfg, now) -> Decision;  step(ctx, event, now) -> Decision

`now` is a monotonic time in seconds, passed in by the caller. Events come from the
monitor (verdicts), the executor (outcomes of actions) and the operator (commands); the
values in and out live in `machine_types.py`. After h11's `_state.py`, the rules are one
table, `RULES` below: one row per state, mapping each event type to its handler
(`machine_handlers.py`; most rows start from `_RECORD`, what every state records, and
override the rest); a `Command` maps to the rule for each operator command. No handler
asks which state it is in. An event type missing from a row is ignored in that
state, and the comment above the row says why. `ALLOWED` lists where each state may go;
the `Builder` (`machine_builder.py`), the one place transitions are made, raises
`TransitionNotAllowed` for any other.

Each Decision also carries two feedback edges for the supervisor: `reset_monitor` (the
router moved or was found) and `probe` (whether and over which path to probe the primary,
whether to probe the backup circuit and to run the DNS checks).

Invariants (property-tested in tests/unit/test_machine_properties.py):
- every transition is in ALLOWED, changes the state, has a reason and a cause;
- at most one router action (read or apply) is in flight; at most one MX action;
- the router job in flight fits the state: none in `primary`/`backup`, a read in
  `starting`/`fault`, an apply in `failing_back` (and in `failing_over` until it ends);
- `held` never acts;
- the router is only changed on entering `failing_over`/`failing_back`, and read only in
  `starting`/`fault`.
"""

from __future__ import annotations

from . import machine_commands as c
from . import machine_handlers as h
from .machine_builder import Builder, TransitionNotAllowed, hold_down, probe_plan
from .machine_commands import NOT_HELD, PAUSED, commands, refuse
from .machine_handlers import Handler
from .machine_types import (
    AbandonMx,
    ApplyWan,
    BackupDown,
    BackupUp,
    Cause,
    Command,
    Context,
    Decision,
    DnsChecked,
    Effect,
    Event,
    Evidence,
    FlushMx,
    MachineConfig,
    MailPathChanged,
    MxAction,
    MxJob,
    MxResult,
    Note,
    PrimaryDown,
    PrimaryUp,
    ProbePlan,
    ProbeVia,
    ReadRouter,
    RepairMx,
    RouterAction,
    RouterJob,
    RouterResult,
    Tick,
    Transition,
    VerifyMx,
    machine_config,
)
from .model import State

__all__ = [
    "ALLOWED", "RULES", "AbandonMx", "ApplyWan", "BackupDown", "BackupUp", "Cause",
    "Command", "Context", "Decision", "DnsChecked", "Effect",
    "Event", "Evidence", "FlushMx", "MachineConfig", "MailPathChanged", "MxAction", "MxJob",
    "MxResult", "Note", "PrimaryDown", "PrimaryUp", "ProbePlan", "ProbeVia",
    "ReadRouter", "RepairMx", "RouterAction", "RouterJob", "RouterResult", "Tick",
    "Transition", "TransitionNotAllowed", "VerifyMx", "hold_down", "machine_config",
    "probe_plan", "start", "step",
]

S = State
ALLOWED: dict[State, frozenset[State]] = {
    S.STARTING: frozenset({S.PRIMARY, S.BACKUP, S.FAULT, S.HELD}),
    S.PRIMARY: frozenset({S.FAILING_OVER, S.HELD}),
    S.FAILING_OVER: frozenset({S.BACKUP, S.FAULT, S.HELD}),
    S.BACKUP: frozenset({S.FAILING_BACK, S.HELD}),
    S.FAILING_BACK: frozenset({S.PRIMARY, S.FAULT, S.HELD}),
    S.HELD: frozenset({S.STARTING, S.PRIMARY, S.BACKUP}),
    S.FAULT: frozenset({S.PRIMARY, S.BACKUP, S.FAILING_OVER, S.FAILING_BACK, S.HELD}),
}

# The monitors' verdicts, the DNS checks and the MX results, recorded (with their
# alarms), not acted on: most rows start from this and override what their state does.
_RECORD: dict[type[Event], Handler] = {
    PrimaryDown: h.record_down, PrimaryUp: h.record_up, MailPathChanged: h.record_mail_path,
    MxResult: h.record_mx, BackupDown: h.record_backup_down, BackupUp: h.record_backup_up,
    DnsChecked: h.record_dns,
}
# The operator's commands while the router is read or moved: only hold and verify.
_BUSY = commands(hold=c.hold_now, resume=NOT_HELD, failover=c.not_here,
                 failback=c.not_here, verify=c.verify_now)

RULES: dict[State, dict[type[Event], Handler]] = {
    # reading the router. Tick: nothing is due until the read ends
    S.STARTING: {**_RECORD, RouterResult: h.after_read, Command: _BUSY},
    # RouterResult: no router action runs on primary, every result is stale. MxResult:
    # after a failback, the verify that the queue's flush waits for
    S.PRIMARY: {
        **_RECORD, Tick: h.tick_on_primary, PrimaryDown: h.fail_over, MxResult: h.mx_on_primary,
        Command: commands(hold=c.hold_now, resume=NOT_HELD, failover=c.failover_now,
                          failback=c.not_here, verify=c.verify_now),
    },
    # the apply, then the MX check, decides. Tick: nothing is due meanwhile
    S.FAILING_OVER: {**_RECORD, RouterResult: h.after_failover, MxResult: h.mx_failing_over,
                     Command: _BUSY},
    # RouterResult: no router action runs on backup, every result is stale
    # BackupDown: both circuits down, the primary is tried at once (trial, auto)
    S.BACKUP: {
        **_RECORD, Tick: h.tick_on_backup, PrimaryUp: h.up_on_backup,
        MailPathChanged: h.mail_path_on_backup, MxResult: h.mx_on_backup,
        BackupDown: h.backup_down_on_backup,
        Command: commands(hold=c.hold_now, resume=NOT_HELD, failover=c.not_here,
                          failback=c.failback_now, verify=c.verify_now),
    },
    # the apply decides. Tick: nothing is due meanwhile
    S.FAILING_BACK: {**_RECORD, RouterResult: h.after_failback, Command: _BUSY},
    # automation paused: health and results are recorded without alarms, nothing is
    # acted on. Tick: time stops (no retries, trials, verifications)
    S.HELD: {
        PrimaryDown: h.held_health, PrimaryUp: h.held_health, MailPathChanged: h.held_mail,
        RouterResult: h.held_router, MxResult: h.record_mx, BackupDown: h.held_backup,
        BackupUp: h.held_backup, DnsChecked: h.held_dns,
        Command: commands(hold=refuse("already held"), resume=c.resume_held,
                          failover=PAUSED, failback=PAUSED, verify=PAUSED),
    },
    # a failed action or an unreadable router, retried with backoff
    S.FAULT: {
        **_RECORD, Tick: h.tick_in_fault, RouterResult: h.after_read,
        Command: commands(hold=c.hold_now, resume=c.resume_retries, failover=c.failover_now,
                          failback=c.failback_now, verify=c.verify_now),
    },
}


def start(cfg: MachineConfig, now: float, failbacks: tuple[float, ...] = ()) -> Decision:
    """The first decision: read the router, which is the truth about where we are.

    `failbacks` (on the caller's clock) carries the flap history across a restart.
    """
    b = Builder(Context(cfg=cfg, since=now, failbacks=failbacks), now, ALLOWED)
    b.read_router()
    return b.done()


def step(ctx: Context, event: Event, now: float) -> Decision:
    """Apply one event: the handler of the context's state for the event's type."""
    b = Builder(ctx, now, ALLOWED)
    handler = RULES[ctx.state].get(type(event))
    if handler is not None:
        handler(b, event)
    return b.done()
