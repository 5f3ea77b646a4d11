"""The values the state machine (`machine.py`) reads and writes; no logic beyond building.

Events come in (from the monitor, the executor and the operator), effects go out (for the
executor), and each `step` returns a `Decision`: the new context, the effects, the
transitions with their `Cause`, the notes for the audit trail, and two feedback edges for
the supervisor (`reset_monitor`, `probe`). All of them are small frozen dataclasses or
string enums: their values appear in the status JSON, the journal and metrics labels.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import BackupMxConfig, Config
from .model import Circuit, DnsHealth, EventKind, LinkHealth, MailPath, OperatorCommand, State

Evidence = Mapping[str, Any]

# -- configuration -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """The policy the machine follows; built from the config by `machine_config()`.

    No defaults here: daemon/config.py is their only home.
    """

    failback_mode: Literal["manual", "auto", "trial"]
    hold_down: float        # least time on backup before an automatic failback
    hold_down_max: float    # cap of the hold-down as it doubles for a flapping primary
    flap_window: float      # failbacks this recent count as flapping
    trial_interval: float   # trial mode: time between attempts
    trial_check: float      # trial mode: a failure this soon after failback reverts
    retry_initial: float    # first retry of a failed action
    retry_max: float        # retry backoff cap
    mx: bool                # a backup MX is configured; without one the MX fields below
    repair: bool            # (which only ever start MX actions) are never read
    flush: bool             # flush the MX queue after a verified failover
    verify_interval: float  # MX verification cadence while on backup
    # a second flush this long after the first: mail that was mid-delivery to the dead
    # tunnel at failover time is deferred only when Postfix's smtp_connect_timeout (30 s
    # by default) runs out, after the first flush; 0 turns it off
    reflush_after: float
    backup_link: bool       # probe the backup circuit's far targets while on it


def _mx_default(name: str) -> Any:
    return BackupMxConfig.model_fields[name].default


def machine_config(cfg: Config) -> MachineConfig:
    """The machine's policy from the validated config.

    Without a `[backup_mx]` section the MX fields are never read (`mx` is False); they
    take the section's own defaults so that the policy is still complete.
    """
    fb, act, mx = cfg.failback, cfg.actions, cfg.backup_mx
    return MachineConfig(
        failback_mode=fb.mode, hold_down=fb.hold_down, hold_down_max=fb.hold_down_max,
        flap_window=fb.flap_window, trial_interval=fb.trial_interval,
        trial_check=fb.trial_check, retry_initial=act.retry_initial,
        retry_max=act.retry_max, mx=mx is not None,
        repair=mx.repair if mx else _mx_default("repair"),
        flush=mx.flush if mx else _mx_default("flush"),
        verify_interval=mx.verify_interval if mx else _mx_default("verify_interval"),
        reflush_after=mx.reflush_after if mx else _mx_default("reflush_after"),
        backup_link=cfg.backup_link.enabled)


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
class BackupDown:
    """The backup circuit's far targets stopped answering while the router is on it."""

    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackupUp:
    evidence: Evidence = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DnsChecked:
    """The `[dns]` checks ran: their verdict, a line on what failed, the checks and the
    records they saw (the evidence of an alarm)."""

    health: DnsHealth
    detail: str = ""
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


@dataclass(frozen=True, slots=True)
class Asked:
    """What an operator command asks of a state's rule (`machine_handlers.commands`)."""

    why: str      # "<action> by <source>: <reason>", the reason of what it starts
    force: bool   # failback: even onto a primary the monitor sees down


Event = (Tick | PrimaryDown | PrimaryUp | BackupDown | BackupUp | DnsChecked | MailPathChanged
         | RouterResult | MxResult | Command)

# -- actions (effects for the executor) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadRouter:
    """Read which circuit the router is on: at start, after `resume`, and in `fault`
    when no failed apply left an intent to retry."""

    action_id: int


@dataclass(frozen=True, slots=True)
class ApplyWan:
    """Move the router to `circuit` (write, save, restart if it must, read back, prove)."""

    action_id: int
    circuit: Circuit   # where to
    reason: str        # the transition's reason (kept with the action it caused)


@dataclass(frozen=True, slots=True)
class VerifyMx:
    """Run the backup-MX checks over SSH (the six of `mx verify`)."""

    action_id: int


@dataclass(frozen=True, slots=True)
class RepairMx:
    """Put the backup MX's maps right after a failed verify (when `repair` is on)."""

    action_id: int


@dataclass(frozen=True, slots=True)
class FlushMx:
    """Flush our domain's queue on the backup MX: after a verified failover, and once
    more `reflush_after` seconds later for mail that was mid-delivery to the dead path."""

    action_id: int


@dataclass(frozen=True, slots=True)
class AbandonMx:
    """The router moves: the MX action in flight is abandoned (its SSH session runs
    through the router, which the move cuts, and what it would say is moot). The machine
    forgets it at once, so the checks after the move need not wait `mx_timeout` for it."""

    action_id: int


RouterAction = ReadRouter | ApplyWan
MxAction = VerifyMx | RepairMx | FlushMx
Effect = RouterAction | MxAction | AbandonMx


class RouterJob(enum.StrEnum):
    """The router action in flight (status JSON `router_action`); one at a time."""

    READ = "read"     # ReadRouter
    APPLY = "apply"   # ApplyWan


class MxJob(enum.StrEnum):
    """The MX action in flight (status JSON `mx_action`); one at a time, beside the
    router's."""

    VERIFY = "verify"   # VerifyMx
    REPAIR = "repair"   # RepairMx
    FLUSH = "flush"     # FlushMx


# -- results --------------------------------------------------------------------------


class Cause(enum.StrEnum):
    """Why a transition happened, in a fixed vocabulary (the metrics' `reason_kind`)."""

    PRIMARY_DOWN = "primary_down"    # the monitor's verdict: the primary is down
    PRIMARY_UP = "primary_up"        # the primary is up and stable past the hold-down
    TRIAL = "trial"                  # a trial failback starts, or fails
    RETRY = "retry"                  # a retry of a failed action
    ROUTER = "router"                # what the router was read or found to run
    ACTION_FAILED = "action_failed"  # a failover or failback failed
    OPERATOR = "operator"            # an operator's command
    BACKUP_DOWN = "backup_down"      # on backup, the backup circuit died too


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State
    to_state: State
    reason: str       # free text, as published (MQTT, journal, status)
    cause: Cause      # the reason's kind, for labels and dashboards
    evidence: Evidence
    at: float


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth an audit event that is not a transition (a refused command...)."""

    kind: EventKind  # the audit event it becomes: command, probe_alarm or action
    reason: str
    detail: Evidence = field(default_factory=dict)


class ProbeVia(enum.StrEnum):
    """Which path the primary is probed over."""

    PRIMARY = "primary"    # through the router, on the primary circuit ([primary] source)
    FAILBACK = "failback"  # on backup: beside the router ([failback] source)


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """Whether to probe the primary now, and over which path (None when not probing);
    whether to probe the backup circuit (on it, through the router) and to run the DNS
    checks (on `primary`, when `[dns]` is set)."""

    probe: bool
    via: ProbeVia | None
    backup: bool = False
    dns: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    cfg: MachineConfig
    state: State = State.STARTING
    circuit: Circuit = Circuit.UNKNOWN
    primary_link: LinkHealth = LinkHealth.UNKNOWN
    primary_down_seen: str = ""            # the last verdict's summary (read while down)
    mail_path: MailPath = MailPath.UNKNOWN
    backup_link: LinkHealth = LinkHealth.UNKNOWN   # probed only while on the backup circuit
    dns: DnsHealth = DnsHealth.UNKNOWN
    dns_known: DnsHealth = DnsHealth.UNKNOWN   # the last verdict of a run that was answered
    since: float = 0.0
    reason: str = "starting"
    next_id: int = 1
    router_job: int | None = None          # id of the router action in flight
    router_job_kind: RouterJob | None = None
    mx_job: int | None = None              # id of the MX action in flight
    mx_job_kind: MxJob | None = None
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
    # after a failback: the MX is verified, then its queue flushed (mail sent to it while
    # the router restarted); the next verify is due then, until `failback_flush_until`
    failback_flush: bool = False
    failback_verify_at: float | None = None
    failback_flush_until: float | None = None
    both_down_tried: float | None = None   # the last failback tried because both were down
    # the steps of the router move in flight and how long each took (seconds): detect,
    # dialogue, restart_wait, read_back, live_proof, mx_checks; the evidence of `backup`
    # (or `primary` after a failback)
    durations: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """One step's outcome. The supervisor executes `actions`, announces `transitions`
    and `notes`, resets the monitor's evidence when `reset_monitor`, and probes the
    primary as `probe` says until the next decision."""

    ctx: Context
    actions: tuple[Effect, ...]
    transitions: tuple[Transition, ...]
    notes: tuple[Note, ...]
    reset_monitor: bool  # the router moved or was found: old evidence about it is moot
    probe: ProbePlan
