"""Small frozen results that cross the postfix_sync border (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The check names are a contract (DESIGN §6): users and tests rely on them.
CHECK_NAMES = (
    "transport_source",
    "transport_compiled",
    "relay_source",
    "relay_compiled",
    "maps_fresh",
    "mail_path",
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True, slots=True)
class FlushReport:
    command: str               # what was run, e.g. "postqueue -s unixwiz.net"
    deferred_before: int
    deferred_after: int
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"command": self.command, "deferred_before": self.deferred_before,
                "deferred_after": self.deferred_after, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RepairReport:
    changed: bool
    diff: str                  # unified diff of the source files (empty when unchanged)
    backups: tuple[str, ...] = ()
    verify: VerifyReport | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "diff": self.diff, "backups": list(self.backups),
                "verify": self.verify.as_dict() if self.verify else None,
                "detail": self.detail}


@dataclass(frozen=True)
class MxSettings:
    """How to reach the backup MX and what it must do for us."""

    host: str
    domain: str
    nexthop: str                # e.g. "smtp:[192.168.7.254]:25"
    key_file: Path
    known_hosts: Path
    port: int = 22
    user: str = "dslfailover"
    connect_timeout: float = 10.0   # bounds TCP connect + SSH handshake + auth
    command_timeout: float = 20.0   # bounds one remote command (postconf, postmap, postqueue)
    smtp_timeout: float = 10.0      # bounds each step of the mail_path SMTP dialogue
    keepalive: float = 15.0         # seconds between SSH keep-alives on the reused connection
    # remote commands, overridable (e.g. "sudo -n postmap") for sites that need them
    postconf: str = "postconf"
    postmap: str = "postmap"
    postqueue: str = "postqueue"
    postfix: str = "postfix"
    config_dir: str | None = None   # passed as -c DIR to every Postfix command when set
    extra: dict[str, str] = field(default_factory=dict)
