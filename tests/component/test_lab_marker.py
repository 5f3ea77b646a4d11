"""A lab's config (`lab = "<id>"`, written by `lab up`) runs only inside that lab.

Outside the lab's `inside` namespace, `probe` and `run` would send ICMP and TCP to the
lab's addresses through the host's own routes: they refuse at once (exit 78) and name
the `ip netns exec` command. A real namespace stands in for the lab's `inside`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import EXIT_CONFIG
from tests.harness import BIN, daemon_config

# Bounds one CLI run: a refusal comes before anything is sent.
CLI_TIMEOUT = 20.0


def dslfailover(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=CLI_TIMEOUT)


def test_a_lab_config_for_a_lab_that_is_not_up_is_refused(tmp_path: Path) -> None:
    config = daemon_config(tmp_path, lab="nolab1")
    done = dslfailover(str(BIN), "probe", "-c", str(config))
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "lab: this config is for lab nolab1, which is not up" in done.stderr
    assert "ip netns exec dslf-nolab1-inside dslfailover" in done.stderr


@pytest.fixture
def inside() -> Iterator[tuple[str, str]]:
    """A namespace named as lab <id>'s `inside` (made and removed here): (id, name)."""
    lab_id = "m" + uuid.uuid4().hex[:6]
    name = f"dslf-{lab_id}-inside"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield lab_id, name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.mark.root
@pytest.mark.parametrize("command", ["probe", "run", "check"])
def test_a_lab_config_outside_its_namespace_is_refused_naming_the_way_in(
        tmp_path: Path, inside: tuple[str, str], command: str) -> None:
    lab_id, name = inside
    config = daemon_config(tmp_path, lab=lab_id)
    done = dslfailover(str(BIN), command, "-c", str(config))
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert f"is not in its namespace {name}" in done.stderr
    assert f"ip netns exec {name} dslfailover <command> -c <this config>" in done.stderr
    assert not (tmp_path / "state").exists()   # nothing started


@pytest.mark.root
def test_a_lab_config_inside_its_namespace_is_accepted(
        tmp_path: Path, inside: tuple[str, str]) -> None:
    lab_id, name = inside
    config = daemon_config(tmp_path, lab=lab_id)
    done = dslfailover("ip", "netns", "exec", name, str(BIN), "check", "-c", str(config))
    assert done.returncode == 0, done.stderr
