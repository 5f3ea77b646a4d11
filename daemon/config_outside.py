"""The config of what the daemon watches outside the office (DESIGN §8): the domain's
MX records (`[dns]`), the backup circuit's own health (`[backup_link]`) and the notices
that reach a person (`[notify]`). Part of `daemon.config`'s schema; only split off to
keep each file readable.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .config_types import Port, Seconds, Section, check_host


def _dns_name(value: str) -> str:
    """A DNS name (an MX target or the domain): a host name, never an address."""
    check_host(value)
    try:
        ip_address(value)
    except ValueError:
        return value.rstrip(".").lower()
    raise ValueError("an address, not a DNS name")


DnsName = Annotated[str, AfterValidator(_dns_name)]


class DnsConfig(Section):
    """The domain's MX records as the world sees them (opt-in; checked by `mx verify`
    and every `interval` while on `primary`)."""

    domain: DnsName | None = None        # default: [backup_mx] domain
    primary_mx: DnsName                  # our MX host, the one senders must try first
    backup_mx: DnsName                   # the customer's Postfix as the MX record names it
    # what `primary_mx` must resolve to (A/AAAA): the primary circuit's public addresses
    primary_public: list[IPv4Address | IPv6Address] = Field(min_length=1, max_length=16)
    nameservers: list[IPv4Address | IPv6Address] = Field(default_factory=list, max_length=8)
    port: Port = 53                      # of the nameservers above
    timeout: Seconds = 5.0               # bounds each lookup (all nameservers tried)
    interval: Annotated[float, Field(ge=60, le=7 * 86400)] = 3600.0

    @model_validator(mode="after")
    def _consistent(self) -> DnsConfig:
        if self.primary_mx == self.backup_mx:
            raise ValueError(f"primary_mx and backup_mx are the same host "
                             f"({self.primary_mx}): the backup MX must be another one")
        if len(set(self.primary_public)) != len(self.primary_public):
            raise ValueError("primary_public lists the same address twice")
        return self


class BackupLinkConfig(Section):
    """The backup circuit's own health while the router is on it: far targets probed
    through the router, on the [primary] schedule and thresholds."""

    enabled: bool = True
    # default: the live proof's far targets (the [primary] targets on neither WAN subnet)
    targets: list[IPv4Address] | None = Field(default=None, min_length=1, max_length=16)


NoticeKind = Literal["transition", "probe_alarm"]
NOTICE_KINDS: tuple[NoticeKind, ...] = ("transition", "probe_alarm")

_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_QUIET = re.compile(rf"^({_CLOCK})-({_CLOCK})$")


def _quiet_hours(value: str) -> str:
    match = _QUIET.fullmatch(value)
    if match is None:
        raise ValueError("not HH:MM-HH:MM (24-hour local time, e.g. 22:00-07:00)")
    if match.group(1) == match.group(3):
        raise ValueError("starts and ends at the same minute: an empty window")
    return value


class NotifyConfig(Section):
    """Notices to a person through Apprise URLs (opt-in): transitions always, alarms
    outside the quiet hours, at most `max_per_hour`."""

    # Apprise URLs, one per line (ntfy://, mailtos://, tgram://, json://...): secrets,
    # they carry tokens; never logged, only their scheme
    urls_file: Path
    kinds: list[NoticeKind] = Field(default_factory=lambda: list(NOTICE_KINDS), min_length=1)
    max_per_hour: Annotated[int, Field(ge=1, le=3600)] = 20
    # probe alarms (not transitions) in this local-time window are not sent; the next
    # notice counts them
    quiet_hours: Annotated[str, AfterValidator(_quiet_hours)] | None = None
    timeout: Seconds = 15.0              # bounds one notice to all URLs
    title: Annotated[str, Field(min_length=1, max_length=80)] = "dslfailover {site}"

    @model_validator(mode="after")
    def _consistent(self) -> NotifyConfig:
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds lists the same kind twice")
        return self
