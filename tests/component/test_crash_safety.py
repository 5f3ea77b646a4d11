"""kill -9 at each step of a failover, for real; after a restart the daemon is consistent.

The daemon runs as a subprocess (`dslfailover run`) against a Netopia CLI emulator in this
test's event loop, on loopback. The emulator is told to hang at a chosen point of the
dialogue; the backup MX is a loopback port that accepts and never speaks, so MX actions
hang too. At each point the process is SIGKILLed and started again with a healthy router:
its state must match what the router really has, and the interrupted intent must be
reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from daemon.control import ControlError, request
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.siteconf import BACKUP, PRIMARY, wan_tables

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent / "dslfailover"


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts and says nothing: an SSH server that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for w in held:
        w.close()
    server.close()


def config(tmp: Path, router_port: int, mx_port: int, *, repair: bool = False) -> Path:
    (tmp / "router.password").write_text("crash-pw\n")
    if not (tmp / "id").exists():  # a real key: the MX black hole hangs after it is loaded
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp / "id"))
    (tmp / "known_hosts").write_text("")
    path = tmp / "dslfailover.toml"
    path.write_text(f"""
site = "crash"
state_dir = "{tmp / 'state'}"
[primary]
targets = ["127.0.0.1"]
interval = 0.2
timeout = 0.5
[router]
driver = "netopia-cli"
host = "127.0.0.1"
port = {router_port}
password_file = "router.password"
connect_timeout = 2.0
step_timeout = 60.0
action_timeout = 120.0
{wan_tables()}[backup_mx]
host = "127.0.0.1"
port = {mx_port}
key_file = "id"
known_hosts = "known_hosts"
domain = "example.net"
nexthop = "smtp:[127.0.0.1]:25"
repair = {str(repair).lower()}
connect_timeout = 60.0
[actions]
mx_timeout = 120.0
[mqtt]
enabled = false
[control]
socket = "{tmp / 'control.sock'}"
[log]
format = "json"
""")
    return path


class Proc:
    def __init__(self, cfg: Path) -> None:
        self.cfg = cfg
        self.sock = cfg.parent / "control.sock"
        self.p = subprocess.Popen([str(BIN), "run", "-c", str(cfg)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)

    async def status(self) -> dict[str, Any]:
        answer = await request(self.sock, {"op": "status"}, timeout=5)
        return dict(answer["status"])

    async def wait(self, pred: Any, timeout: float = 30.0) -> dict[str, Any]:
        last: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        last = await self.status()
                        if pred(last):
                            return last
                    except ControlError:
                        pass
                    await asyncio.sleep(0.1)
        except TimeoutError:
            events = [e["reason"] for e in last.get("events", [])]
            raise AssertionError(f"not reached in {timeout}s; last status {last}; "
                                 f"events {events}") from None

    async def command(self, action: str) -> dict[str, Any]:
        return await request(self.sock, {"op": "command", "action": action,
                                         "reason": "crash test"}, timeout=10)

    def kill9(self) -> None:
        os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill9()


def state_is(name: str) -> Any:
    return lambda s: s.get("state") == name


def interrupted(status: dict[str, Any]) -> list[str]:
    return [e["reason"] for e in status["events"]
            if e["reason"].startswith("interrupted before it finished")]


async def crash_and_restart(tmp: Path, router: RouterState, mx_port: int, *,
                            hang_at: str | None, wait_for: Any, repair: bool = False
                            ) -> tuple[dict[str, Any], RouterState]:
    cfg = config(tmp, router_port_of(router), mx_port, repair=repair)
    first = Proc(cfg)
    try:
        await first.wait(state_is("primary"))
        router.options = replace(router.options, hang_at=hang_at)  # type: ignore[arg-type]
        assert (await first.command("failover"))["accepted"]
        await first.wait(wait_for)
        await asyncio.sleep(0.3)  # well inside the step it hangs in
        first.kill9()
    finally:
        first.stop()
    router.options = replace(router.options, hang_at=None)
    second = Proc(cfg)
    try:
        status = await second.wait(lambda s: s.get("state") in ("primary", "backup"))
    finally:
        second.stop()
    state_file = json.loads((tmp / "state" / "state.json").read_text())
    # the restart reported the old intent and cleared it (a new MX verify may be running)
    assert set((state_file["intent"] or {}).keys()) <= {"mx"}
    return status, router


_PORTS: dict[int, int] = {}


def router_port_of(router: RouterState) -> int:
    return _PORTS[id(router)]


@pytest.fixture
async def router() -> AsyncIterator[RouterState]:
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password="crash-pw")
                            ) as (_, port, state):
        _PORTS[id(state)] = port
        yield state


@pytest.mark.parametrize("hang_at", ["login", "set", "save"])
async def test_kill_during_the_router_dialogue_resumes_on_primary(
        tmp_path: Path, router: RouterState, black_hole: int, hang_at: str) -> None:
    status, router = await crash_and_restart(
        tmp_path, router, black_hole, hang_at=hang_at,
        wait_for=lambda s: s.get("router_action") == "apply")
    assert router.saved == PRIMARY and router.saves == 0  # nothing half-saved
    assert status["state"] == "primary" and status["circuit"] == "primary"
    assert any("apply backup" in r for r in interrupted(status)), status["events"]


async def test_kill_after_the_dialogue_during_mx_verify_resumes_on_backup(
        tmp_path: Path, router: RouterState, black_hole: int) -> None:
    status, router = await crash_and_restart(
        tmp_path, router, black_hole, hang_at=None,
        wait_for=lambda s: s.get("mx_action") == "verify" and s.get("circuit") == "backup")
    assert router.saved == BACKUP
    assert status["circuit"] == "backup"
    assert status["state"] == "backup"
    assert any("verify backup MX" in r for r in interrupted(status)), [
        e["reason"] for e in status["events"]]


async def test_kill_before_the_dialogue_starts_resumes_on_primary(
        tmp_path: Path, router: RouterState, black_hole: int) -> None:
    cfg = config(tmp_path, router_port_of(router), black_hole)
    first = Proc(cfg)
    try:
        await first.wait(state_is("primary"))
        first.kill9()
    finally:
        first.stop()
    second = Proc(cfg)
    try:
        status = await second.wait(state_is("primary"))
    finally:
        second.stop()
    assert status["circuit"] == "primary"
    assert router.saved == PRIMARY
