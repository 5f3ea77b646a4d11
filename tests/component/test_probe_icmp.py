"""ICMP probes: to 127.0.0.1, and to a dead address only inside a namespace we create."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from daemon.probes.icmp import choose_privileged, echo, echo_all


def test_loopback_answers() -> None:
    import asyncio

    result = asyncio.run(echo(IPv4Address("127.0.0.1"), timeout=1.0,
                              privileged=choose_privileged()))
    assert result.ok
    assert result.rtt_ms is not None and result.rtt_ms < 1000


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"dslf-t-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # a subnet with nobody on it: echo requests to .2 go unanswered
        # (this kernel has no dummy links: a veth pair whose far end has no address)
        subprocess.run(["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "v1"],
                       check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "10.77.0.1/24", "dev", "v0"],
                       check=True)
        for dev in ("v0", "v1"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.root
def test_dead_address_in_a_namespace_is_no_reply_not_an_error(netns: str) -> None:
    import sys

    code = (
        "import asyncio; from ipaddress import IPv4Address as A;"
        "from daemon.probes.icmp import echo_all;"
        "r = asyncio.run(echo_all([A('10.77.0.1'), A('10.77.0.2')], timeout=0.5,"
        " privileged=True));"
        "print([(x.target, x.ok) for x in r])"
    )
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('10.77.0.1', True), ('10.77.0.2', False)]"


def test_echo_all_probes_every_target() -> None:
    import asyncio

    results = asyncio.run(echo_all([IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2")],
                                   timeout=1.0, privileged=True))
    assert [r.target for r in results] == ["127.0.0.1", "127.0.0.2"]
    assert all(r.ok for r in results)
