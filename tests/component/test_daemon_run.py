"""`dslfailover run` end to end: real process, real mosquitto, real ICMP in namespaces.

The daemon runs inside a namespace `d` with its broker on d's loopback; its primary
targets live in a second namespace `t` behind a veth pair. Cutting the veth is the
primary dying. The dry-run driver stands in for the router (the router issue tests the
real dialogues); a subscriber (mosquitto_sub, inside `d`) records what was published.
How long a failover takes with a dead broker: tests/bench/bench_failover.py --dead-broker.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemon.lab.mosquitto import Mosquitto
from tests.harness import DaemonProcess, daemon_config, wait_until_sync

pytestmark = [pytest.mark.root, pytest.mark.slow]

Message = tuple[str, str]
TOPICS = "dslfailover/e2e"
# A topic under the subscription that the daemon never publishes: the subscriber has
# subscribed once a message on it comes back.
MARKER = f"{TOPICS}/test-marker"
# Bounds each wait for a message or a state.
WAIT = 20.0
# Runs a client as an unprivileged user: while the daemon (root) is kept off the broker.
AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def ip(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10, text=True,
                   input=stdin)


@dataclass
class Site:
    d: str
    t: str
    broker: Mosquitto
    config: Path
    state_dir: Path

    def daemon(self) -> DaemonProcess:
        return DaemonProcess(self.config, prefix=["ip", "netns", "exec", self.d])

    def last_state(self) -> str | None:
        try:
            return str(json.loads((self.state_dir / "state.json").read_text())["last_state"])
        except (OSError, ValueError, KeyError):
            return None

    def wait_last_state(self, name: str) -> None:
        wait_until_sync(lambda: self.last_state() == name, WAIT,
                        f"state {name} in the state file", detail=self.last_state)

    def client(self, *argv: str, as_nobody: bool = False) -> list[str]:
        """A mosquitto client command line, run in `d` against the broker."""
        user = AS_NOBODY if as_nobody else ()
        return ["ip", "netns", "exec", self.d, *user, *argv, "-h", "127.0.0.1",
                "-p", str(self.broker.port)]

    @contextlib.contextmanager
    def broker_closed_to_root(self) -> Iterator[None]:
        """Connections from root (the daemon) to the broker are refused at once (TCP
        reset); other users get through."""
        ip("netns", "exec", self.d, "nft", "-f", "-", stdin=(
            "table inet dslf_test_hold {\n chain out {\n"
            "  type filter hook output priority 0; policy accept;\n"
            f"  tcp dport {self.broker.port} meta skuid 0 reject with tcp reset\n }}\n}}\n"))
        try:
            yield
        finally:
            ip("netns", "exec", self.d, "nft", "delete", "table", "inet", "dslf_test_hold")


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
        with Mosquitto(netns=d) as broker:
            config = daemon_config(
                tmp_path, site="e2e", log={"format": "json"},
                primary={"targets": ["10.78.0.2", "10.78.0.3"], "timeout": 0.3,
                         "down_after": 3, "up_after": 5},
                mqtt={"enabled": None, "host": "127.0.0.1", "port": broker.port})
            yield Site(d, t, broker, config, tmp_path / "state")
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


@dataclass
class Subscriber:
    proc: subprocess.Popen[str]
    marker: Callable[[], None]
    messages: list[Message] = field(default_factory=list)

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            self.messages.append((topic, payload))

    def wait_for(self, pred: Callable[[Message], bool], what: str) -> None:
        wait_until_sync(lambda: any(pred(m) for m in list(self.messages)), WAIT, what,
                        detail=lambda: self.messages[-10:], step=0.05)

    def subscribed(self) -> bool:
        if any(t == MARKER for t, _ in self.messages):
            return True
        self.marker()
        return False

    def states(self) -> list[str]:
        return [json.loads(p)["state"] for t, p in self.messages if t.endswith("/state")]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.messages if t.endswith("/event")]


@contextlib.contextmanager
def subscribed(site: Site, *, as_nobody: bool = False) -> Iterator[Subscriber]:
    """mosquitto_sub on the daemon's topics, subscribed (its marker came back)."""
    proc = subprocess.Popen(
        site.client("mosquitto_sub", "-t", f"{TOPICS}/#", "-v", "-q", "1",
                    as_nobody=as_nobody),
        stdout=subprocess.PIPE, text=True, start_new_session=True)

    def marker() -> None:
        subprocess.run(site.client("mosquitto_pub", "-t", MARKER, "-m", "x",
                                   as_nobody=as_nobody),
                       capture_output=True, timeout=10, check=False)

    sub = Subscriber(proc, marker)
    threading.Thread(target=sub.pump, daemon=True).start()
    try:
        wait_until_sync(sub.subscribed, WAIT, "the subscriber's marker message", step=0.1)
        yield sub
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def state_is(name: str) -> Callable[[Message], bool]:
    return lambda m: m[0].endswith("/state") and json.loads(m[1])["state"] == name


def primary_above(seq: int) -> Callable[[Message], bool]:
    return lambda m: state_is("primary")(m) and json.loads(m[1])["seq"] > seq


def transitions(sub: Subscriber) -> list[tuple[str, str]]:
    return [(e["from"], e["to"]) for e in sub.events() if e["kind"] == "transition"]


FAILOVER = [("starting", "primary"), ("primary", "failing_over"), ("failing_over", "backup")]


def test_run_publishes_primary_then_fails_over_when_the_targets_die(site: Site) -> None:
    with subscribed(site) as sub:
        daemon = site.daemon()
        try:
            sub.wait_for(state_is("primary"), "state primary on MQTT")
            sub.wait_for(lambda m: m[0].endswith("/probe/10.78.0.2")
                         and json.loads(m[1])["ok"], "a good probe of 10.78.0.2")
            ip("-n", site.d, "link", "set", "v0", "down")
            sub.wait_for(state_is("backup"), "state backup on MQTT")
            assert daemon.terminate() == 0
            sub.wait_for(lambda m: m[0].endswith("/availability") and m[1] == "offline",
                         "availability offline")
        finally:
            daemon.terminate()
    assert sub.states() in (["starting", "primary", "backup"],
                            ["starting", "primary", "failing_over", "backup"])
    assert transitions(sub) == FAILOVER
    seqs = [int(e["seq"]) for e in sub.events()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    failover = next(e for e in sub.events() if e.get("to") == "failing_over")
    assert str(failover["reason"]).startswith("primary down: 0/2 targets answered")


def test_history_survives_a_restart_and_seq_keeps_growing(site: Site) -> None:
    seen: list[int] = []
    with subscribed(site) as sub:
        for _ in range(2):
            daemon = site.daemon()
            try:
                before = max(seen, default=0)
                sub.wait_for(primary_above(before), f"state primary with a seq above {before}")
                seen.append(max(json.loads(p)["seq"] for t, p in sub.messages
                                if t.endswith("/state")))
                assert daemon.terminate() == 0
            finally:
                daemon.terminate()
    assert seen[1] > seen[0]
    state = json.loads((site.state_dir / "state.json").read_text())
    assert state["seq"] >= seen[1]
    assert state["intent"] is None


def test_a_dead_broker_never_stops_a_failover_and_the_events_follow_in_order(
        site: Site) -> None:
    site.broker.stop()
    daemon = site.daemon()
    try:
        site.wait_last_state("primary")   # with nobody listening
        ip("-n", site.d, "link", "set", "v0", "down")
        site.wait_last_state("backup")
        # the broker comes back; our subscriber is on it before the daemon may connect,
        # so it sees the events the daemon buffered, from the first
        with contextlib.ExitStack() as stack:
            with site.broker_closed_to_root():
                site.broker.start()
                sub = stack.enter_context(subscribed(site, as_nobody=True))
            sub.wait_for(state_is("backup"), "state backup on MQTT")
            sub.wait_for(lambda m: m[0].endswith("/event") and json.loads(m[1])["to"]
                         == "backup", "the event of the move to backup")
            assert daemon.terminate() == 0
    finally:
        daemon.terminate()
    assert transitions(sub) == FAILOVER
    seqs = [int(e["seq"]) for e in sub.events()]
    assert seqs == sorted(seqs) and seqs[0] == 1  # all of them, from the first, in order
