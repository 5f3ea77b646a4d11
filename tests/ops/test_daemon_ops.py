"""The operator paths against the real daemon: `dslfailover run` in a process, the CLI in
others, /metrics over HTTP. The dry-run driver stands in for the router; the primary
targets are loopback addresses (ICMP as root), MQTT is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.resources import of_process
from tests.harness import BIN, DaemonProcess, daemon_config, free_port, wait_until_sync

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Bounds the daemon's start until it reports `primary` (first probe rounds, router read).
START_TIMEOUT = 20.0
# Bounds one CLI run.
CLI_TIMEOUT = 20.0


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, check=False)


class Daemon:
    """`dslfailover run` with metrics on a free port, asked through the CLI."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = tmp_path / "control.sock"
        self.port = free_port()
        self.config = daemon_config(
            tmp_path, site="ops",
            primary={"targets": ["127.0.0.1", "127.0.0.2"], "timeout": 0.3,
                     "down_after": 3, "up_after": 5},
            log={"format": "json"},
            metrics={"enabled": True, "host": "127.0.0.1", "port": self.port})
        self.log = tmp_path / "daemon.log"
        self.process = DaemonProcess(self.config, log=self.log)
        self.proc = self.process.proc

    def status(self) -> dict[str, object]:
        done = cli("status", "--json", "-c", str(self.config))
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    def _in_state(self, name: str) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited: {self.log.read_text()[-2000:]}")
        return self.socket.exists() and self.status().get("state") == name

    def wait_for_state(self, name: str) -> dict[str, object]:
        wait_until_sync(lambda: self._in_state(name), START_TIMEOUT, f"state {name}",
                        detail=lambda: self.log.read_text()[-2000:], step=0.1)
        return self.status()

    def stop(self) -> int:
        return self.process.terminate()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_operator_holds_the_running_daemon_and_sees_it_everywhere(daemon: Daemon) -> None:
    daemon.wait_for_state("primary")
    held = cli("hold", "--reason", "ISP maintenance", "-c", str(daemon.config))
    assert held.returncode == 0, held.stderr
    status = daemon.status()
    assert status["state"] == "held"
    assert "ISP maintenance" in str(status["reason"])
    # the reason names the CLI process (SO_PEERCRED), not the daemon
    assert f"control uid={os.getuid()} pid=" in str(status["reason"])
    assert f"pid={daemon.proc.pid}" not in str(status["reason"])
    metrics = scrape(daemon.port)
    assert metrics[("dslfailover_state", frozenset({"site": "ops", "state": "held"}.items()))] \
        == 1.0
    again = cli("hold", "-c", str(daemon.config))
    assert again.returncode == 1
    assert "hold refused" in again.stderr
    assert daemon.stop() == 0
    assert not daemon.socket.exists()
    gone = cli("status", "-c", str(daemon.config))
    assert gone.returncode == 69


def test_status_reports_what_the_daemon_process_holds(daemon: Daemon) -> None:
    process = daemon.wait_for_state("primary")["process"]
    assert isinstance(process, dict)
    seen = of_process(daemon.proc.pid)   # the same /proc figures, read from outside
    assert set(process) == {"rss_kb", "open_fds", "threads", "tasks"}
    assert 0.5 * seen.rss_kb < process["rss_kb"] < 2 * seen.rss_kb
    assert process["open_fds"] > 0 and process["threads"] >= 1
    assert process["tasks"] >= 3   # at least the probes, the ticker and the step loop


def test_failover_and_failback_wait_for_the_move_and_tell_how_it_ended(daemon: Daemon) -> None:
    daemon.wait_for_state("primary")
    over = cli("failover", "--reason", "line test", "-c", str(daemon.config))
    assert over.returncode == 0, over.stderr
    assert over.stdout.splitlines()[-1].startswith("failover done: state backup (")
    assert daemon.status()["state"] == "backup"   # done means done: no wait needed here
    back = cli("failback", "-c", str(daemon.config))
    assert back.returncode == 0, back.stderr
    assert back.stdout.splitlines()[-1].startswith("failback done: state primary (")
    assert daemon.status()["state"] == "primary"
