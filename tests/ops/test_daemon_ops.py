"""The operator paths against the real daemon: `dslfailover run` in a process, the CLI in
others, /metrics over HTTP. The dry-run driver stands in for the router; the primary
targets are loopback addresses (ICMP as root), MQTT is off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

pytestmark = [pytest.mark.root, pytest.mark.slow]

BIN = Path(sys.executable).parent / "dslfailover"
# Bounds the daemon's start until it reports `primary` (first probe rounds, router read).
START_TIMEOUT = 20.0
# Bounds one CLI run.
CLI_TIMEOUT = 20.0
# Bounds the daemon's exit after SIGTERM.
STOP_TIMEOUT = 20.0

CONFIG = """
site = "ops"
state_dir = "{state}"
[primary]
targets = ["127.0.0.1", "127.0.0.2"]
interval = 0.2
timeout = 0.3
down_after = 3
up_after = 5
[router]
driver = "dry-run"
live_proof = false
[router.primary]
address = "10.91.0.2"
netmask = "255.255.255.0"
gateway = "10.91.0.1"
[router.backup]
address = "10.92.0.2"
netmask = "255.255.255.0"
gateway = "10.92.0.1"
[mqtt]
enabled = false
[control]
socket = "{socket}"
[metrics]
enabled = true
host = "127.0.0.1"
port = {port}
[log]
format = "json"
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, check=False)


class Daemon:
    def __init__(self, tmp_path: Path) -> None:
        self.socket = tmp_path / "control.sock"
        self.port = free_port()
        self.config = tmp_path / "dslfailover.toml"
        self.config.write_text(CONFIG.format(state=tmp_path / "state", socket=self.socket,
                                             port=self.port), encoding="utf-8")
        self.log = tmp_path / "daemon.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(BIN), "run", "-c", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def status(self) -> dict[str, object]:
        done = cli("status", "--json", "-c", str(self.config))
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    def wait_for_state(self, name: str) -> dict[str, object]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()[-2000:]}")
            if self.socket.exists():
                status = self.status()
                if status.get("state") == name:
                    return status
            time.sleep(0.1)
        raise AssertionError(f"no {name} within {START_TIMEOUT}s: "
                             f"{self.log.read_text()[-2000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


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
