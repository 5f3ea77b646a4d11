"""Fixtures shared by the component tests."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

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
