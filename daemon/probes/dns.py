"""The `[dns]` lookups (DESIGN §8): the domain's MX records, the CNAME of each MX target,
and the A and AAAA records of our MX host, with dnspython's async stub resolver; the
verdict is `daemon.dns_checks`'.

dnspython is imported inside the functions, so importing this module costs nothing
until a check runs (the daemon's RSS at rest does not grow without `[dns]`). Every DNS
outcome, a timeout included, becomes a `Lookup`; `check_dns` never raises for one.

    settings = DnsSettings.from_config(cfg)
    if settings is not None:
        report = await check_dns(settings)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..dns_checks import DnsReport, Lookup, MxRecord, Outcome, judge_mx, judge_primary

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rdata

    from ..config import Config

T = TypeVar("T")

# Bounds one lookup beyond the resolver's own lifetime (the settings' timeout, which
# dnspython enforces itself): a guard in case the library overruns it, never reached
# in practice.
LOOKUP_SLACK = 1.0


@dataclass(frozen=True, slots=True)
class DnsSettings:
    """What the lookups need, from `[dns]`: no nameservers means the system's
    (/etc/resolv.conf); `timeout` bounds each lookup, all nameservers tried."""

    domain: str
    primary_mx: str
    backup_mx: str
    primary_public: tuple[str, ...]
    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: float = 5.0

    @classmethod
    def from_config(cls, cfg: Config) -> DnsSettings | None:
        """The settings of `cfg`'s `[dns]` table; None without one."""
        dns_cfg, domain = cfg.dns, cfg.dns_domain
        if dns_cfg is None or domain is None:
            return None
        return cls(domain=domain, primary_mx=dns_cfg.primary_mx,
                   backup_mx=dns_cfg.backup_mx,
                   primary_public=tuple(str(a) for a in dns_cfg.primary_public),
                   nameservers=tuple(str(a) for a in dns_cfg.nameservers),
                   port=dns_cfg.port, timeout=dns_cfg.timeout)


def _resolver(settings: DnsSettings) -> dns.asyncresolver.Resolver:
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
    if settings.nameservers:
        resolver.nameservers = list(settings.nameservers)
    resolver.port = settings.port
    resolver.lifetime = settings.timeout      # the whole lookup, all servers and retries
    resolver.timeout = settings.timeout       # one server's turn (capped by the lifetime)
    resolver.retry_servfail = False
    return resolver


def _servers(resolver: dns.asyncresolver.Resolver, port: int) -> str:
    names = [str(ns) for ns in resolver.nameservers]
    return ", ".join(f"{n}:{port}" if ":" not in n else f"[{n}]:{port}" for n in names) \
        or "no nameserver"


async def lookup(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str,
                 parse: Callable[[dns.rdata.Rdata], T], *, port: int) -> Lookup[T]:
    """One query of `name`/`rdtype` as a `Lookup`: its records made by `parse`, or how
    it ended (NXDOMAIN, no records of the type, no answer in time, an error)."""
    import dns.exception
    import dns.resolver

    try:
        async with asyncio.timeout(resolver.lifetime + LOOKUP_SLACK):
            answer = await resolver.resolve(name, rdtype, search=False,
                                            raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return Lookup(name, rdtype, Outcome.NXDOMAIN)
    except dns.resolver.NoAnswer:
        return Lookup(name, rdtype, Outcome.NO_ANSWER)
    except (dns.resolver.LifetimeTimeout, TimeoutError):
        return Lookup(name, rdtype, Outcome.TIMEOUT,
                      detail=f"no answer from {_servers(resolver, port)} within "
                             f"{resolver.lifetime:g}s")
    except dns.resolver.NoNameservers as exc:   # every server refused or failed
        return Lookup(name, rdtype, Outcome.ERROR, detail=str(exc))
    except (dns.exception.DNSException, OSError) as exc:
        return Lookup(name, rdtype, Outcome.ERROR,
                      detail=f"{type(exc).__name__}: {exc} ({_servers(resolver, port)})")
    if answer.rrset is None:
        return Lookup(name, rdtype, Outcome.NO_ANSWER)
    return Lookup(name, rdtype, Outcome.ANSWER, tuple(parse(r) for r in answer.rrset))


def _mx(rdata: dns.rdata.Rdata) -> MxRecord:
    return MxRecord(int(rdata.preference), rdata.exchange.to_text())  # type: ignore[attr-defined]


def _cname(rdata: dns.rdata.Rdata) -> str:
    return str(rdata.target.to_text())  # type: ignore[attr-defined]


def _address(rdata: dns.rdata.Rdata) -> str:
    return str(rdata.address)  # type: ignore[attr-defined]


async def check_dns(settings: DnsSettings) -> DnsReport:
    """Both `[dns]` checks (`dns_mx`, `dns_primary`): the MX lookup (then the CNAME
    lookups of its targets) alongside the A and AAAA lookups of `primary_mx`. Takes at
    most about twice the settings' timeout."""
    resolver = _resolver(settings)
    port = settings.port

    async def mx_and_cnames() -> tuple[Lookup[MxRecord], dict[str, Lookup[str]]]:
        mx = await lookup(resolver, settings.domain, "MX", _mx, port=port)
        hosts = list(dict.fromkeys(r.exchange for r in mx.records if r.host))
        found = await asyncio.gather(
            *(lookup(resolver, h, "CNAME", _cname, port=port) for h in hosts))
        return mx, dict(zip(hosts, found, strict=True))

    (mx, cnames), a, aaaa = await asyncio.gather(
        mx_and_cnames(),
        lookup(resolver, settings.primary_mx, "A", _address, port=port),
        lookup(resolver, settings.primary_mx, "AAAA", _address, port=port))
    return DnsReport((
        judge_mx(settings.domain, settings.primary_mx, settings.backup_mx, mx, cnames),
        judge_primary(settings.primary_mx, settings.primary_public, a, aaaa),
    ))
