"""`dslfailover run` end to end: real process, real mosquitto, real ICMP in namespaces.

The daemon runs inside a namespace `d` with its broker on d's loopback; its primary
targets live in a second namespace `t` behind a veth pair. Cutting the veth is the
primary dying. The dry-run driver stands in for the router (the router issue tests the
real dialogues); a subscriber (mosquitto_sub, inside `d`) records what was published.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.lab.mosquitto import Mosquitto
from tests.siteconf import wan_tables

pytestmark = [pytest.mark.root, pytest.mark.slow]

BIN = Path(sys.executable).parent / "dslfailover"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass
class Site:
    d: str
    t: str
    broker: Mosquitto
    config: Path
    state_dir: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    tag = uuid.uuid4().hex[:6]
    d, t = f"dslf-{tag}-d", f"dslf-{tag}-t"
    made: list[str] = []
    try:
        for ns in (d, t):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", d, "link", "add", "v0", "type", "veth", "peer", "v1", "netns", t)
        ip("-n", d, "addr", "add", "10.78.0.1/24", "dev", "v0")
        ip("-n", t, "addr", "add", "10.78.0.2/24", "dev", "v1")
        ip("-n", t, "addr", "add", "10.78.0.3/24", "dev", "v1")
        ip("-n", d, "link", "set", "v0", "up")
        ip("-n", t, "link", "set", "v1", "up")
        broker = Mosquitto(netns=d)
        broker.start()
        state_dir = tmp_path / "state"
        config = tmp_path / "dslfailover.toml"
        config.write_text(f"""
site = "e2e"
state_dir = "{state_dir}"
[primary]
targets = ["10.78.0.2", "10.78.0.3"]
interval = 0.2
timeout = 0.3
down_after = 3
up_after = 5
[router]
driver = "dry-run"
{wan_tables()}[mqtt]
host = "127.0.0.1"
port = {broker.port}
[control]
socket = "{tmp_path / 'control.sock'}"
[log]
format = "json"
""")
        yield Site(d, t, broker, config, state_dir)
        broker.stop()
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


@dataclass
class Subscriber:
    proc: subprocess.Popen[str]
    messages: list[tuple[str, str]] = field(default_factory=list)

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            self.messages.append((topic, payload))

    def wait_for(self, pred: object, timeout: float = 20.0) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in list(self.messages):
                if pred(msg):  # type: ignore[operator]
                    return msg
            time.sleep(0.05)
        raise AssertionError(f"not seen within {timeout}s; got {self.messages[-10:]}")

    def states(self) -> list[str]:
        return [json.loads(p)["state"] for t, p in self.messages if t.endswith("/state")]

    def events(self) -> list[dict[str, object]]:
        return [json.loads(p) for t, p in self.messages if t.endswith("/event")]


def subscribe(site: Site) -> Subscriber:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", site.d, "mosquitto_sub", "-h", "127.0.0.1",
         "-p", str(site.broker.port), "-t", "dslfailover/e2e/#", "-v", "-q", "1"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    sub = Subscriber(proc)
    threading.Thread(target=sub.pump, daemon=True).start()
    time.sleep(0.3)  # subscribed before the daemon starts
    return sub


def state_is(name: str) -> object:
    return lambda m: m[0].endswith("/state") and json.loads(m[1])["state"] == name


def test_run_publishes_primary_then_fails_over_when_the_targets_die(site: Site) -> None:
    sub = subscribe(site)
    daemon = subprocess.Popen(
        ["ip", "netns", "exec", site.d, str(BIN), "run", "-c", str(site.config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        sub.wait_for(state_is("primary"))
        sub.wait_for(lambda m: m[0].endswith("/probe/10.78.0.2") and json.loads(m[1])["ok"])
        ip("-n", site.d, "link", "set", "v0", "down")
        sub.wait_for(state_is("backup"))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
        sub.wait_for(lambda m: m[0].endswith("/availability") and m[1] == "offline")
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
        os.killpg(sub.proc.pid, signal.SIGTERM)
        output = daemon.stdout.read() if daemon.stdout else ""
    assert sub.states() == ["starting", "primary", "backup"] or sub.states() == [
        "starting", "primary", "failing_over", "backup"], output[-3000:]
    transitions = [(e["from"], e["to"]) for e in sub.events() if e["kind"] == "transition"]
    assert transitions == [("starting", "primary"), ("primary", "failing_over"),
                           ("failing_over", "backup")], output[-3000:]
    seqs = [int(e["seq"]) for e in sub.events()]  # type: ignore[call-overload]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    failover = next(e for e in sub.events() if e.get("to") == "failing_over")
    assert str(failover["reason"]).startswith("primary down: 0/2 targets answered")


def test_history_survives_a_restart_and_seq_keeps_growing(site: Site) -> None:
    sub = subscribe(site)
    seen: list[int] = []
    for _ in range(2):
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", site.d, str(BIN), "run", "-c", str(site.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(0.5)
            sub.wait_for(lambda m: m[0].endswith("/state")
                         and json.loads(m[1])["state"] == "primary"
                         and json.loads(m[1])["seq"] > (max(seen) if seen else 0))
            seen.append(max(json.loads(p)["seq"] for t, p in sub.messages
                            if t.endswith("/state")))
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=20) == 0
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
    os.killpg(sub.proc.pid, signal.SIGTERM)
    assert seen[1] > seen[0]
    state = json.loads((site.state_dir / "state.json").read_text())
    assert state["seq"] >= seen[1]
    assert state["intent"] is None


def test_a_dead_broker_never_delays_a_failover_and_the_events_follow_in_order(
        site: Site) -> None:
    site.broker.stop()
    daemon = subprocess.Popen(
        ["ip", "netns", "exec", site.d, str(BIN), "run", "-c", str(site.config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(3.0)  # primary, with nobody listening
        cut = time.monotonic()
        ip("-n", site.d, "link", "set", "v0", "down")
        state_file = site.state_dir / "state.json"
        while time.monotonic() - cut < 15:
            if state_file.exists() and json.loads(state_file.read_text()).get(
                    "last_state") == "backup":
                break
            time.sleep(0.05)
        took = time.monotonic() - cut
        assert json.loads(state_file.read_text())["last_state"] == "backup"
        assert took < 5.0  # the dry-run router and no MX: detection is all it takes
        # the broker comes back; a subscriber is there before the daemon's next retry
        # (its backoff has grown to seconds by now), so it sees the buffered events
        site.broker.start()
        sub = subscribe(site)
        sub.wait_for(state_is("backup"))
        sub.wait_for(lambda m: m[0].endswith("/event") and json.loads(m[1])["to"] == "backup")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
    os.killpg(sub.proc.pid, signal.SIGTERM)
    transitions = [(e["from"], e["to"]) for e in sub.events() if e["kind"] == "transition"]
    assert transitions == [("starting", "primary"), ("primary", "failing_over"),
                           ("failing_over", "backup")]
    seqs = [int(e["seq"]) for e in sub.events()]  # type: ignore[call-overload]
    assert seqs == sorted(seqs) and seqs[0] == 1  # all of them, from the first, in order
