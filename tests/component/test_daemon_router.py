"""The daemon fails over and back through the real telnet path to both Netopia emulators.

In-process: the Daemon runs in this event loop against an emulator on loopback; operator
commands go through `Daemon.submit` (what the control socket calls). The primary's
targets are 127.0.0.1, which always answers: the router dialogue is what is tested here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.config import load_config, load_secrets
from daemon.model import Action, EventKind, OperatorCommand, State
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.siteconf import BACKUP, PRIMARY, wan_tables

PASSWORD = "router-Pw-771"


def write_config(tmp: Path, driver: str, port: int) -> Path:
    (tmp / "router.password").write_text(PASSWORD + "\n")
    cfg = tmp / "dslfailover.toml"
    cfg.write_text(f"""
site = "routertest"
state_dir = "{tmp / 'state'}"
[primary]
targets = ["127.0.0.1"]
interval = 0.2
timeout = 0.5
up_after = 3
[router]
driver = "{driver}"
host = "127.0.0.1"
port = {port}
password_file = "router.password"
connect_timeout = 2.0
step_timeout = 2.0
action_timeout = 30.0
{wan_tables()}[mqtt]
enabled = false
[control]
socket = "{tmp / 'control.sock'}"
""")
    return cfg


async def wait_state(daemon: Daemon, state: State, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while daemon.ctx is None or daemon.ctx.state != state:
            await asyncio.sleep(0.02)


@pytest.fixture(params=["netopia-menu", "netopia-cli"])
async def running(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> AsyncIterator[tuple[Daemon, RouterState]]:
    console = "menu" if request.param == "netopia-menu" else "cli"
    async with run_emulator(console, PRIMARY,  # type: ignore[arg-type]
                            options=EmulatorOptions(password=PASSWORD)) as (_, port, state):
        cfg = load_config(write_config(tmp_path, request.param, port))
        daemon = Daemon(cfg, load_secrets(cfg))
        task = asyncio.create_task(daemon.run())
        try:
            await wait_state(daemon, State.PRIMARY)
            yield daemon, state
        finally:
            daemon.stop.set()
            await asyncio.wait_for(task, 30)


async def test_failover_and_failback_through_the_console(
        running: tuple[Daemon, RouterState]) -> None:
    daemon, router = running
    answer = await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
    assert answer["accepted"], answer
    await wait_state(daemon, State.BACKUP)
    assert router.saved == BACKUP
    answer = await daemon.submit(OperatorCommand(Action.FAILBACK, "test", "pytest"))
    assert answer["accepted"], answer
    await wait_state(daemon, State.PRIMARY)
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
    await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
    await wait_state(daemon, State.BACKUP)
    transcripts = [str(e.detail.get("transcript", "")) for e in daemon.audit.recent]
    assert any("backup" in e.reason for e in daemon.audit.recent)
    assert any(t for t in transcripts)
    assert PASSWORD not in repr([e.as_dict() for e in daemon.audit.recent])
    assert PASSWORD not in repr(daemon.status())


async def test_a_refused_field_is_a_fault_and_nothing_saved(tmp_path: Path) -> None:
    options = EmulatorOptions(password=PASSWORD, refuse=frozenset({"gateway"}))
    async with run_emulator("cli", PRIMARY, options=options) as (_, port, router):
        cfg = load_config(write_config(tmp_path, "netopia-cli", port))
        daemon = Daemon(cfg, load_secrets(cfg))
        task = asyncio.create_task(daemon.run())
        try:
            await wait_state(daemon, State.PRIMARY)
            await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
            await wait_state(daemon, State.FAULT)
            assert router.saved == PRIMARY
            assert router.saves == 0
            assert daemon.ctx is not None and "failover failed" in daemon.ctx.reason
        finally:
            daemon.stop.set()
            await asyncio.wait_for(task, 30)


async def test_the_flap_history_survives_a_restart(tmp_path: Path) -> None:
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password=PASSWORD)
                            ) as (_, port, _router):
        cfg = load_config(write_config(tmp_path, "netopia-cli", port))
        for restart in range(2):
            daemon = Daemon(cfg, load_secrets(cfg))
            task = asyncio.create_task(daemon.run())
            try:
                await wait_state(daemon, State.PRIMARY)
                if restart == 0:
                    assert daemon.status()["hold_down"] == 300
                    await daemon.submit(OperatorCommand(Action.FAILOVER, "t", "pytest"))
                    await wait_state(daemon, State.BACKUP)
                    await daemon.submit(OperatorCommand(Action.FAILBACK, "t", "pytest"))
                    await wait_state(daemon, State.PRIMARY)
                else:
                    # one recent failback: the next automatic one waits twice as long
                    assert daemon.status()["hold_down"] == 600
            finally:
                daemon.stop.set()
                await asyncio.wait_for(task, 30)
