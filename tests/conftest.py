"""Shared fixtures: free loopback ports and the root check for namespace tests."""

from __future__ import annotations

import os
import socket

import pytest


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `root` need namespaces/nftables; CI runs as root. Elsewhere they are
    # skipped with a reason rather than failing for want of privileges.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, nftables)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
