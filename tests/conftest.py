"""The root check for namespace tests (helpers every test shares live in tests/harness.py)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `root` need namespaces/nftables; CI runs as root. Elsewhere they are
    # skipped with a reason rather than failing for want of privileges.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, nftables)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
