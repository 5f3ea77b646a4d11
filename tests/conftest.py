"""Fixtures every folder uses (a real mosquitto, a name server that never answers) and
the root check for namespace tests; the helpers every test shares live in
tests/harness.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from daemon.lab.mosquitto import Mosquitto
from daemon.lab.nsd import silent_udp_port


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    """One anonymous mosquitto per test module on a free loopback port (daemon.lab's
    launcher: its own process group, stopped and its temp dir removed after a failure
    too); tests use distinct topic prefixes."""
    with Mosquitto() as b:
        yield b


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port on 127.0.0.1 where nothing ever answers (a dead name server)."""
    with silent_udp_port() as port:
        yield port


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `root` need namespaces/nftables; CI runs as root. Elsewhere they are
    # skipped with a reason rather than failing for want of privileges.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, nftables)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
