"""The daemon fails over and back through the real telnet path to both Netopia emulators.

In-process: the Daemon runs in this event loop against an emulator on loopback; operator
commands go through `Daemon.submit` (what the control socket calls). The primary's
targets are 127.0.0.1, which always answers: the router dialogue is what is tested here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.model import Action, EventKind, OperatorCommand, State
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.harness import (
    BACKUP,
    PRIMARY,
    daemon_config,
    running_daemon,
    secret_file,
    wait_state,
)

PASSWORD = "router-Pw-771"
DRIVERS = {"netopia-menu": "menu", "netopia-cli": "cli"}


def write_config(tmp: Path, driver: str, port: int) -> Path:
    secret_file(tmp / "router.password", PASSWORD)
    return daemon_config(
        tmp, site="routertest", primary={"up_after": 3},
        router={"driver": driver, "host": "127.0.0.1", "port": port,
                "password_file": "router.password", "connect_timeout": 2.0,
                "step_timeout": 2.0, "restart_timeout": 20.0, "action_timeout": 30.0})


@contextlib.asynccontextmanager
async def emulated(tmp: Path, driver: str, options: EmulatorOptions | None = None
                   ) -> AsyncIterator[tuple[Path, RouterState]]:
    """The driver's emulator on loopback, and a config for the daemon pointing at it."""
    async with run_emulator(DRIVERS[driver], PRIMARY,  # type: ignore[arg-type]
                            options=options or EmulatorOptions(password=PASSWORD)
                            ) as (_, port, state):
        yield write_config(tmp, driver, port), state


@pytest.fixture(params=sorted(DRIVERS))
async def running(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> AsyncIterator[tuple[Daemon, RouterState]]:
    async with emulated(tmp_path, request.param) as (cfg, state), running_daemon(
            cfg, ready=[State.PRIMARY]) as daemon:
        yield daemon, state


async def command(daemon: Daemon, action: Action, then: State) -> None:
    answer = await daemon.submit(OperatorCommand(action, "test", "pytest"))
    assert answer["accepted"], answer
    await wait_state(daemon, then)


async def test_failover_and_failback_through_the_console(
        running: tuple[Daemon, RouterState]) -> None:
    daemon, router = running
    await command(daemon, Action.FAILOVER, State.BACKUP)
    assert router.saved == BACKUP
    await command(daemon, Action.FAILBACK, State.PRIMARY)
    assert router.saved == PRIMARY
    transitions = [(e.from_state, e.to_state) for e in daemon.audit.recent
                   if e.kind == EventKind.TRANSITION]
    assert transitions[-4:] == [(State.PRIMARY, State.FAILING_OVER),
                                (State.FAILING_OVER, State.BACKUP),
                                (State.BACKUP, State.FAILING_BACK),
                                (State.FAILING_BACK, State.PRIMARY)]


async def test_the_password_is_in_no_event_or_transcript(
        running: tuple[Daemon, RouterState]) -> None:
    daemon, _ = running
    await command(daemon, Action.FAILOVER, State.BACKUP)
    transcripts = [str(e.detail.get("transcript", "")) for e in daemon.audit.recent]
    assert any("backup" in e.reason for e in daemon.audit.recent)
    assert any(t for t in transcripts)
    assert PASSWORD not in repr([e.as_dict() for e in daemon.audit.recent])
    assert PASSWORD not in repr(daemon.status())


async def test_a_refused_field_is_a_fault_and_nothing_saved(tmp_path: Path) -> None:
    options = EmulatorOptions(password=PASSWORD, refuse=frozenset({"gateway"}))
    async with emulated(tmp_path, "netopia-cli", options) as (cfg, router), running_daemon(
            cfg, ready=[State.PRIMARY]) as daemon:
        await command(daemon, Action.FAILOVER, State.FAULT)
        assert router.saved == PRIMARY
        assert router.saves == 0
        assert daemon.ctx is not None and "failover failed" in daemon.ctx.reason


async def test_the_flap_history_survives_a_restart(tmp_path: Path) -> None:
    async with emulated(tmp_path, "netopia-cli") as (cfg, _router):
        async with running_daemon(cfg, ready=[State.PRIMARY]) as daemon:
            assert daemon.status()["hold_down"] == 300
            await command(daemon, Action.FAILOVER, State.BACKUP)
            await command(daemon, Action.FAILBACK, State.PRIMARY)
        async with running_daemon(cfg, ready=[State.PRIMARY]) as daemon:
            # one recent failback: the next automatic one waits twice as long
            assert daemon.status()["hold_down"] == 600
