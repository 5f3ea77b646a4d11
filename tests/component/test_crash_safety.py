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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncssh
import pytest

from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from router_drivers.emulator.state import HangPoint
from tests.harness import (
    BACKUP,
    PRIMARY,
    Status,
    daemon_config,
    daemon_process,
    secret_file,
    wait_until,
)

pytestmark = pytest.mark.slow

PASSWORD = "crash-pw"


@dataclass
class BlackHole:
    """A TCP port that accepts and says nothing: an SSH server that hangs."""

    port: int
    held: list[asyncio.StreamWriter] = field(default_factory=list)


@pytest.fixture
async def black_hole() -> AsyncIterator[BlackHole]:
    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hole.held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    hole = BlackHole(int(server.sockets[0].getsockname()[1]))
    yield hole
    for w in hole.held:
        w.close()
    server.close()


@dataclass(frozen=True)
class Router:
    state: RouterState
    port: int


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password=PASSWORD)
                            ) as (_, port, state):
        yield Router(state, port)


def config(tmp: Path, router: Router, mx: BlackHole) -> Path:
    secret_file(tmp / "router.password", PASSWORD)
    if not (tmp / "id").exists():  # a real key: the MX black hole hangs after it is loaded
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp / "id"))
    (tmp / "known_hosts").write_text("")
    return daemon_config(
        tmp, site="crash", log={"format": "json"}, actions={"mx_timeout": 120.0},
        router={"driver": "netopia-cli", "host": "127.0.0.1", "port": router.port,
                "password_file": "router.password", "connect_timeout": 2.0,
                "step_timeout": 60.0, "action_timeout": 120.0},
        backup_mx={"host": "127.0.0.1", "port": mx.port, "key_file": "id",
                   "known_hosts": "known_hosts", "domain": "example.net",
                   "nexthop": "smtp:[127.0.0.1]:25", "repair": False,
                   "connect_timeout": 60.0})


def interrupted(status: Status) -> list[str]:
    return [e["reason"] for e in status["events"]
            if e["reason"].startswith("interrupted before it finished")]


async def crash_and_restart(tmp: Path, router: Router, mx: BlackHole, *,
                            hang_at: HangPoint | None, inside: Callable[[], bool],
                            what: str) -> Status:
    """Fail over, kill -9 once `inside` says the daemon is in the step that hangs, start
    it again with a healthy router: its status once it has decided where it is."""
    cfg = config(tmp, router, mx)
    with daemon_process(cfg) as first:
        await first.wait_state("primary")
        router.state.options = replace(router.state.options, hang_at=hang_at)
        assert (await first.command("failover", "crash test"))["accepted"]
        await wait_until(inside, 30.0, what)
        first.kill9()
    router.state.options = replace(router.state.options, hang_at=None)
    with daemon_process(cfg) as second:
        status = await second.wait_state("primary", "backup")
    state_file = json.loads((tmp / "state" / "state.json").read_text())
    # the restart reported the old intent and cleared it (a new MX verify may be running)
    assert set((state_file["intent"] or {}).keys()) <= {"mx"}
    return status


def reached(router: RouterState, hang_at: HangPoint, sessions: int) -> bool:
    """The failover's dialogue got to `hang_at`: a new session for the login, else the
    command it hangs on (the first word of a line the emulator received)."""
    if hang_at == "login":
        return router.sessions > sessions
    return any(line.split()[:1] == [hang_at] for line in router.received)


@pytest.mark.parametrize("hang_at", ["login", "set", "save"])
async def test_kill_during_the_router_dialogue_resumes_on_primary(
        tmp_path: Path, router: Router, black_hole: BlackHole, hang_at: HangPoint) -> None:
    sessions = router.state.sessions + 1   # the start's read of the router comes first
    status = await crash_and_restart(
        tmp_path, router, black_hole, hang_at=hang_at,
        inside=lambda: reached(router.state, hang_at, sessions),
        what=f"the failover's router dialogue at {hang_at}")
    assert router.state.saved == PRIMARY and router.state.saves == 0  # nothing half-saved
    assert status["state"] == "primary" and status["circuit"] == "primary"
    assert any("apply backup" in r for r in interrupted(status)), status["events"]


async def test_kill_after_the_dialogue_during_mx_verify_resumes_on_backup(
        tmp_path: Path, router: Router, black_hole: BlackHole) -> None:
    status = await crash_and_restart(
        tmp_path, router, black_hole, hang_at=None,
        inside=lambda: router.state.saved == BACKUP and bool(black_hole.held),
        what="the MX verify connected to the black hole after the router moved")
    assert router.state.saved == BACKUP
    assert status["circuit"] == "backup"
    assert status["state"] == "backup"
    assert any("verify backup MX" in r for r in interrupted(status)), [
        e["reason"] for e in status["events"]]


async def test_kill_before_the_dialogue_starts_resumes_on_primary(
        tmp_path: Path, router: Router, black_hole: BlackHole) -> None:
    cfg = config(tmp_path, router, black_hole)
    with daemon_process(cfg) as first:
        await first.wait_state("primary")
        first.kill9()
    with daemon_process(cfg) as second:
        status = await second.wait_state("primary")
    assert status["circuit"] == "primary"
    assert router.state.saved == PRIMARY
