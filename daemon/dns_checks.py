"""The `[dns]` checks' judgement (DESIGN §8): what the domain's MX records and our MX
host's addresses must be, decided from what the lookups saw. No I/O: `daemon.probes.dns`
does the lookups and hands their outcomes (`Lookup`) to the judges here.

Two checks, their names a contract (`DNS_CHECK_NAMES`):

- `dns_mx`: the domain's MX set lists `primary_mx` and, with a larger preference value
  (tried later), `backup_mx`; no other host is preferred over ours, and no MX target is
  a CNAME (RFC 2181 §10.3).
- `dns_primary`: `primary_mx` resolves (A/AAAA) only to the primary circuit's public
  addresses, and to at least one.

A resolver that did not answer makes a check `unknown`, never `ok`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Generic, TypeVar

from .model import DnsHealth

DNS_MX = "dns_mx"
DNS_PRIMARY = "dns_primary"
DNS_CHECK_NAMES = (DNS_MX, DNS_PRIMARY)

T = TypeVar("T")


def dns_name(name: str) -> str:
    """A DNS name as the checks compare it: lowercase, without the trailing dot."""
    return name.rstrip(".").lower()


class Outcome(enum.StrEnum):
    """How one query ended."""

    ANSWER = "answer"          # records of the asked type
    NO_ANSWER = "no_answer"    # the name exists, no records of that type (NODATA)
    NXDOMAIN = "nxdomain"      # the name does not exist
    TIMEOUT = "timeout"        # no server answered within the timeout
    ERROR = "error"            # servers answered, but not usefully (REFUSED, SERVFAIL...)


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    """What one query (`name`, `rdtype`) saw: its records (ANSWER only) or why none;
    `detail` says which servers did not answer, and within what, on TIMEOUT/ERROR."""

    name: str
    rdtype: str
    outcome: Outcome
    records: tuple[T, ...] = ()
    detail: str = ""

    @property
    def answered(self) -> bool:
        """Whether a server answered for the name (records, NODATA or NXDOMAIN)."""
        return self.outcome not in (Outcome.TIMEOUT, Outcome.ERROR)


@dataclass(frozen=True, slots=True, order=True)
class MxRecord:
    preference: int
    exchange: str

    @property
    def host(self) -> str:
        return dns_name(self.exchange)

    def __str__(self) -> str:
        return f"{self.preference} {self.host}."


@dataclass(frozen=True, slots=True)
class DnsCheck:
    name: str
    health: DnsHealth
    detail: str
    records: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.health is DnsHealth.OK

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "health": self.health.value, "records": list(self.records)}


@dataclass(frozen=True, slots=True)
class DnsReport:
    checks: tuple[DnsCheck, ...] = field(default_factory=tuple)

    @property
    def health(self) -> DnsHealth:
        """FAILING if any check fails, else UNKNOWN if any is unknown, else OK."""
        seen = {c.health for c in self.checks}
        for health in (DnsHealth.FAILING, DnsHealth.UNKNOWN):
            if health in seen:
                return health
        return DnsHealth.OK

    @property
    def ok(self) -> bool:
        return self.health is DnsHealth.OK

    def failed(self) -> tuple[DnsCheck, ...]:
        """The checks that are not ok (failing or unknown)."""
        return tuple(c for c in self.checks if not c.ok)

    def summary(self) -> str:
        """One line: `dns ok`, or each check that is not ok, its health and why."""
        if self.ok:
            return "dns ok"
        return "; ".join(f"{c.name} {c.health.value}: {c.detail}" for c in self.failed())

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "health": self.health.value,
                "checks": [c.as_dict() for c in self.checks]}


def _unanswered(name: str, lookups: list[Lookup[Any]], records: tuple[str, ...]) -> DnsCheck:
    why = "; ".join(f"{lk.rdtype} {dns_name(lk.name)}: {lk.detail or lk.outcome.value}"
                    for lk in lookups)
    return DnsCheck(name, DnsHealth.UNKNOWN, f"cannot tell: {why}", records)


# -- dns_mx ---------------------------------------------------------------------------

def judge_mx(domain: str, primary_mx: str, backup_mx: str, mx: Lookup[MxRecord],
             cnames: Mapping[str, Lookup[str]]) -> DnsCheck:
    """`dns_mx` from the domain's MX lookup and the CNAME lookup of each exchange
    (`cnames`, keyed by exchange name in any case, with or without the trailing dot)."""
    domain, ours, backup = dns_name(domain), dns_name(primary_mx), dns_name(backup_mx)
    expected = f"expected MX {ours} and {backup} with a larger preference value"
    if not mx.answered:
        return _unanswered(DNS_MX, [mx], ())
    if mx.outcome is Outcome.NXDOMAIN:
        return DnsCheck(DNS_MX, DnsHealth.FAILING,
                        f"{domain} does not exist (NXDOMAIN); {expected}")
    records = tuple(sorted(mx.records, key=lambda r: (r.preference, r.host)))
    seen = tuple(str(r) for r in records)
    if not records:
        return DnsCheck(DNS_MX, DnsHealth.FAILING, f"{domain} has no MX records; {expected}")
    problems = _mx_problems(ours, backup, records)
    problems += _cname_problems(records, cnames)
    if problems:
        return DnsCheck(DNS_MX, DnsHealth.FAILING,
                        f"{'; '.join(problems)} ({expected}; seen: {', '.join(seen)})", seen)
    unknown = [lk for lk in _cname_lookups(records, cnames) if not lk.answered]
    if unknown:
        return _unanswered(DNS_MX, unknown, seen)
    return DnsCheck(DNS_MX, DnsHealth.OK,
                    f"{ours} (ours) preferred over {backup} (backup): {', '.join(seen)}", seen)


def _mx_problems(ours: str, backup: str, records: tuple[MxRecord, ...]) -> list[str]:
    by_host: dict[str, int] = {}
    for r in records:   # sorted: the first preference seen per host is its best
        by_host.setdefault(r.host, r.preference)
    if ours not in by_host:
        return [f"our MX {ours} is not listed"]
    mine = by_host[ours]
    problems: list[str] = []
    if backup not in by_host:
        problems.append(f"the backup MX {backup} is missing")
    elif by_host[backup] < mine:
        problems.append(f"the backup MX {backup} ({by_host[backup]}) is preferred over "
                        f"ours ({mine})")
    elif by_host[backup] == mine:
        problems.append(f"the backup MX {backup} has the same preference as ours ({mine})")
    others = [f"{host} ({pref})" for host, pref in by_host.items()
              if host not in (ours, backup) and pref <= mine]
    if others:
        problems.append(f"preferred over or equal to ours ({mine}): {', '.join(others)}")
    return problems


def _cname_lookups(records: tuple[MxRecord, ...],
                   cnames: Mapping[str, Lookup[str]]) -> list[Lookup[str]]:
    by_name = {dns_name(k): v for k, v in cnames.items()}
    hosts = dict.fromkeys(r.host for r in records if r.host)   # "" is a null MX (".")
    return [by_name[h] for h in hosts if h in by_name]


def _cname_problems(records: tuple[MxRecord, ...],
                    cnames: Mapping[str, Lookup[str]]) -> list[str]:
    return [f"MX target {dns_name(lk.name)} is a CNAME (to {dns_name(lk.records[0])}.; "
            f"RFC 2181 §10.3)"
            for lk in _cname_lookups(records, cnames)
            if lk.outcome is Outcome.ANSWER and lk.records]


# -- dns_primary ----------------------------------------------------------------------

def _address(text: str) -> str:
    try:
        return str(ip_address(text))
    except ValueError:
        return text


def judge_primary(primary_mx: str, primary_public: tuple[str, ...], a: Lookup[str],
                  aaaa: Lookup[str]) -> DnsCheck:
    """`dns_primary` from the A and AAAA lookups of `primary_mx`: every address it
    resolves to is one of `primary_public`, and it resolves to at least one."""
    host = dns_name(primary_mx)
    wanted = tuple(_address(p) for p in primary_public)
    expected = f"expected {host} to resolve only to {', '.join(wanted)}"
    lookups = (a, aaaa)
    seen = tuple(dict.fromkeys(_address(r) for lk in lookups for r in lk.records))
    if any(lk.outcome is Outcome.NXDOMAIN for lk in lookups):
        return DnsCheck(DNS_PRIMARY, DnsHealth.FAILING,
                        f"{host} does not exist (NXDOMAIN); {expected}", seen)
    foreign = [s for s in seen if s not in wanted]
    if foreign:
        return DnsCheck(DNS_PRIMARY, DnsHealth.FAILING,
                        f"{host} points elsewhere: {', '.join(foreign)} "
                        f"({expected}; seen: {', '.join(seen)})", seen)
    unanswered = [lk for lk in lookups if not lk.answered]
    if unanswered:
        return _unanswered(DNS_PRIMARY, unanswered, seen)
    if not seen:
        return DnsCheck(DNS_PRIMARY, DnsHealth.FAILING,
                        f"{host} has no address (no A or AAAA records); {expected}")
    return DnsCheck(DNS_PRIMARY, DnsHealth.OK, f"{host} resolves to {', '.join(seen)}", seen)
