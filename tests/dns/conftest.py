"""Real DNS for the `[dns]` tests: a private NSD on a loopback port serving the zones a
test writes, and a nameserver that never answers. Every query goes to 127.0.0.1; the
system resolver is never asked (the settings always name the nameserver).

The backup MX world of tests/mx (sshd, private Postfix, SMTP sink) is offered here too,
for `mx verify` with its DNS checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest_asyncio

from daemon.lab.nsd import StartNsd, nsd_servers
from daemon.probes.dns import DnsSettings
from tests.mx.conftest import DOMAIN, mx, mx_world

# tests/mx's world and fixtures, for test_cli_mx_verify
__all__ = ["DOMAIN", "mx", "mx_world"]

PRIMARY_MX = "mail.unixwiz.net"
BACKUP_MX = "mx1.example.org"
PRIMARY_PUBLIC = ("192.0.2.10", "2001:db8::10")
# Bounds each lookup of the tests: loopback answers at once; only the silent server
# waits this long.
LOOKUP_TIMEOUT = 2.0


def zone(origin: str, *records: str) -> str:
    """A zone file for `origin`: SOA, NS and `records` (zone file lines, names relative
    to the origin unless they end in a dot)."""
    return "\n".join([
        f"$ORIGIN {origin}.",
        "$TTL 300",
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 86400 300",
        f"@ IN NS ns1.{origin}.",
        "ns1 IN A 127.0.0.1",
        *records,
        "",
    ])


def our_zone(*, mx: tuple[str, ...] = ("10 mail", f"20 {BACKUP_MX}."),
             mail: tuple[str, ...] = ("A 192.0.2.10", "AAAA 2001:db8::10"),
             extra: tuple[str, ...] = ()) -> str:
    """unixwiz.net: the MX set `mx` ("pref target"), mail.unixwiz.net's `mail`
    addresses, and `extra` lines. The defaults are the correct zone."""
    return zone(DOMAIN, *(f"@ IN MX {m}" for m in mx), *(f"mail IN {a}" for a in mail),
                *extra)


def backup_zone(*extra: str) -> str:
    """example.org, the backup MX provider's zone: mx1 has an address."""
    return zone("example.org", "mx1 IN A 198.51.100.25", *extra)


def zones(ours: str | None = None, backup: str | None = None) -> dict[str, str]:
    """Both zones (the correct ones unless given)."""
    return {DOMAIN: ours or our_zone(), "example.org": backup or backup_zone()}


def settings_for(port: int, **changes: object) -> DnsSettings:
    """The checks' settings for a nameserver on 127.0.0.1:`port`, with `changes`."""
    base = DnsSettings(domain=DOMAIN, primary_mx=PRIMARY_MX, backup_mx=BACKUP_MX,
                       primary_public=PRIMARY_PUBLIC, nameservers=("127.0.0.1",),
                       port=port, timeout=LOOKUP_TIMEOUT)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def start_nsd() -> AsyncIterator[StartNsd]:
    """`await start_nsd(zones)`: a real nsd serving `zones` (origin -> zone text), up
    and answering; stopped after the test, after a failure too (on the session's loop,
    like tests/mx's world)."""
    async with nsd_servers() as start:
        yield start
