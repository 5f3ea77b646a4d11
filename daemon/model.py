"""Small frozen values shared across the daemon: states, snapshots, audit events.

The names of states and health values appear on MQTT and in the journal (DESIGN §4,
§7): they are a contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import __version__


class State(enum.StrEnum):
    STARTING = "starting"
    PRIMARY = "primary"
    FAILING_OVER = "failing_over"
    BACKUP = "backup"
    FAILING_BACK = "failing_back"
    HELD = "held"
    FAULT = "fault"


class Circuit(enum.StrEnum):
    """Which WAN config the router runs (read back from it; unknown until read)."""

    PRIMARY = "primary"
    BACKUP = "backup"
    UNKNOWN = "unknown"


class LinkHealth(enum.StrEnum):
    """The monitor's verdict on the primary circuit (unknown until it has one)."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class MailPath(enum.StrEnum):
    """Whether mail reaches our server through the tunnel: the SMTP probe and the
    backup MX's checks (unknown until one of them has run)."""

    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"


class DnsHealth(enum.StrEnum):
    """The `[dns]` checks' verdict on the domain's MX records (`dns` in the state): a
    resolver that did not answer is `unknown`, never `ok`."""

    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"


class EventKind(enum.StrEnum):
    """What an audit event is about (`kind` on `<prefix>/event` and in the journal)."""

    TRANSITION = "transition"
    ACTION = "action"
    PROBE_ALARM = "probe_alarm"
    COMMAND = "command"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """ISO 8601 UTC with millisecond precision and a Z, as published on MQTT."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What `<prefix>/state` carries (retained)."""

    state: State
    circuit: Circuit
    primary_link: LinkHealth
    mail_path: MailPath
    since: datetime
    reason: str
    seq: int
    version: str = __version__
    # added fields (issue 12): the domain's MX records, the backup circuit's own health
    dns: DnsHealth = DnsHealth.UNKNOWN
    backup_link: LinkHealth = LinkHealth.UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "circuit": self.circuit.value,
            "primary_link": self.primary_link.value,
            "mail_path": self.mail_path.value,
            "since": iso(self.since),
            "reason": self.reason,
            "seq": self.seq,
            "version": self.version,
            "dns": self.dns.value,
            "backup_link": self.backup_link.value,
        }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What `<prefix>/event` carries (QoS 1, not retained) and what goes to the journal."""

    seq: int
    at: datetime
    kind: EventKind
    from_state: State | None
    to_state: State | None
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "kind": self.kind.value,
            "from": self.from_state.value if self.from_state else None,
            "to": self.to_state.value if self.to_state else None,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ProbeSummary:
    """What `<prefix>/probe/<name>` carries (retained): one target's recent health, or
    that it is not probed now (`paused`: on backup the primary is not probed unless a
    failback source is set). The one view of a target: status, MQTT and metrics."""

    name: str
    ok: bool | None        # None: paused
    loss: float | None     # 0.0 .. 1.0 over the monitor's window; None: paused
    rtt_ms: float | None   # mean round-trip of the answered probes in the window
    at: datetime
    paused: bool = False

    @classmethod
    def paused_at(cls, name: str, at: datetime) -> ProbeSummary:
        return cls(name, None, None, None, at, paused=True)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "ok": self.ok,
            "loss": None if self.loss is None else round(self.loss, 3),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 2),
            "at": iso(self.at),
        }
        if self.paused:
            out["paused"] = True
        return out


class Action(enum.StrEnum):
    """Operator commands (control socket, CLI, MQTT `<prefix>/cmd`)."""

    FAILOVER = "failover"
    FAILBACK = "failback"
    HOLD = "hold"
    RESUME = "resume"
    VERIFY = "verify"


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """A validated operator command and who sent it (e.g. "mqtt", "uid 1000")."""

    action: Action
    reason: str   # the operator's own words, printable, at most 200 characters
    source: str   # "mqtt" or the control socket's peer (uid and pid)
    force: bool = False  # failback only: even onto a primary the monitor sees down


@dataclass(frozen=True, slots=True)
class RejectedCommand:
    """A command that was refused before reaching the state machine, and why."""

    why: str
    source: str
    excerpt: str  # a short, printable excerpt of what was received
