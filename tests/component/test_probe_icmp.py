"""ICMP probes: to 127.0.0.1, and to a dead address only inside a namespace we create."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address

import pytest

from daemon.probes.icmp import choose_privileged, echo, echo_all
from tests.component.conftest import NetnsFactory


def test_loopback_answers() -> None:
    import asyncio

    result = asyncio.run(echo(IPv4Address("127.0.0.1"), timeout=1.0,
                              privileged=choose_privileged("auto")))
    assert result.ok
    assert result.rtt_ms is not None and result.rtt_ms < 1000


@pytest.fixture
def netns(lone_subnet_netns: NetnsFactory) -> str:
    return lone_subnet_netns("10.77.0.1/24")


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
