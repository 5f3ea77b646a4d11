"""Fixtures shared by the component tests."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from daemon.lab.nsd import StartNsd, nsd_servers
from tests.dns.conftest import BACKUP_MX, DOMAIN, PRIMARY_MX, PRIMARY_PUBLIC

# Bounds each lookup against NSD on loopback (an answer comes at once).
LOOKUP_TIMEOUT = 2.0


@pytest.fixture
async def start_nsd() -> AsyncIterator[StartNsd]:
    """`await start_nsd(zones)`: a real nsd serving `zones`; stopped after the test (on
    the test's own loop: tests/dns has one on the session's)."""
    async with nsd_servers() as start:
        yield start


def dns_section(port: int, timeout: float = LOOKUP_TIMEOUT) -> dict[str, Any]:
    """`[dns]` asking the nameserver on 127.0.0.1:`port` (the interval is the minimum:
    the first run, at once on primary, is all a test needs)."""
    return {"domain": DOMAIN, "primary_mx": PRIMARY_MX, "backup_mx": BACKUP_MX,
            "primary_public": list(PRIMARY_PUBLIC), "nameservers": ["127.0.0.1"],
            "port": port, "timeout": timeout, "interval": 60}

NetnsFactory = Callable[[str], str]


@pytest.fixture
def lone_subnet_netns() -> Iterator[NetnsFactory]:
    """make(ADDRESS/PREFIX) -> a new namespace where only ADDRESS answers on its subnet.

    This kernel has no dummy links: a veth pair whose far end has no address, so echo
    requests to any other address of the subnet go unanswered. Deleted after the test.
    """
    made: list[str] = []

    def make(interface: str) -> str:
        name = f"dslf-c-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "v1"],
                       check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", interface, "dev", "v0"], check=True)
        for dev in ("v0", "v1"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        return name

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)
