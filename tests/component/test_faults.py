"""Fault injection on the in-process daemon: a hanging router, an unreachable backup MX,
a state directory that is read-only or full. The daemon keeps running and says what is
wrong; nothing is half-done.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from daemon.app import Daemon
from daemon.config import load_config, load_secrets
from daemon.model import Action, EventKind, MailPath, OperatorCommand, State
from router_drivers.emulator import EmulatorOptions, run_emulator
from tests.conftest import free_port
from tests.siteconf import BACKUP, PRIMARY, wan_tables


def write_config(tmp: Path, *, router: str, state_dir: Path | None = None,
                 mx_port: int | None = None) -> Path:
    (tmp / "router.password").write_text("fault-pw\n")
    mx = ""
    if mx_port is not None:
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp / "id"))
        (tmp / "known_hosts").write_text("")
        mx = f"""
[backup_mx]
host = "127.0.0.1"
port = {mx_port}
key_file = "id"
known_hosts = "known_hosts"
domain = "example.net"
nexthop = "smtp:[127.0.0.1]:25"
connect_timeout = 2.0
"""
    path = tmp / "dslfailover.toml"
    path.write_text(f"""
site = "faults"
state_dir = "{state_dir or tmp / 'state'}"
[primary]
targets = ["127.0.0.1"]
interval = 0.2
timeout = 0.5
{router}
{wan_tables()}{mx}
[actions]
retry_initial = 0.5
[mqtt]
enabled = false
[control]
socket = "{tmp / 'control.sock'}"
""")
    return path


async def wait_for(daemon: Daemon, pred: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while daemon.ctx is None or not pred(daemon.ctx):  # type: ignore[operator]
            await asyncio.sleep(0.02)


@pytest.fixture
async def run_daemon() -> AsyncIterator[object]:
    tasks: list[tuple[Daemon, asyncio.Task[None]]] = []

    async def start(cfg_path: Path) -> Daemon:
        cfg = load_config(cfg_path)
        daemon = Daemon(cfg, load_secrets(cfg))
        tasks.append((daemon, asyncio.create_task(daemon.run())))
        await wait_for(daemon, lambda c: c.state in (State.PRIMARY, State.BACKUP))
        return daemon

    yield start
    for daemon, task in tasks:
        daemon.stop.set()
        await asyncio.wait_for(task, 30)


DRY_RUN = '[router]\ndriver = "dry-run"'


async def test_router_that_hangs_mid_dialogue_is_a_fault_then_a_retry_succeeds(
        tmp_path: Path, run_daemon: object) -> None:
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password="fault-pw")
                            ) as (_, port, router):
        router_cfg = (f'[router]\ndriver = "netopia-cli"\nhost = "127.0.0.1"\nport = {port}\n'
                      'password_file = "router.password"\nstep_timeout = 0.5\n')
        daemon: Daemon = await run_daemon(write_config(tmp_path, router=router_cfg))  # type: ignore[operator]
        router.options = replace(router.options, hang_at="set")
        await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
        await wait_for(daemon, lambda c: c.state == State.FAULT)
        assert router.saved == PRIMARY and router.saves == 0
        assert daemon.ctx is not None and "failover failed" in daemon.ctx.reason
        router.options = replace(router.options, hang_at=None)
        await wait_for(daemon, lambda c: c.state == State.BACKUP)
        assert router.saved == BACKUP


async def test_unreachable_backup_mx_on_backup_raises_an_alarm_and_stays_on_backup(
        tmp_path: Path, run_daemon: object) -> None:
    cfg = write_config(tmp_path, router=DRY_RUN, mx_port=free_port())  # nobody listens
    daemon: Daemon = await run_daemon(cfg)  # type: ignore[operator]
    await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
    await wait_for(daemon, lambda c: c.state == State.BACKUP and c.mx_job is None)
    assert daemon.ctx is not None and daemon.ctx.mail_path == MailPath.FAILING
    alarms = [e for e in daemon.audit.recent if e.kind == EventKind.PROBE_ALARM]
    assert any("backup MX check failed" in e.reason for e in alarms)
    # a later verification that still fails keeps us on backup
    await daemon.submit(OperatorCommand(Action.VERIFY, "again", "pytest"))
    await asyncio.sleep(0.5)
    await wait_for(daemon, lambda c: c.mx_job is None)
    assert daemon.ctx.state == State.BACKUP


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.root
async def test_full_state_directory_is_logged_and_the_daemon_keeps_working(
        tmp_path: Path, small_mount: Path, run_daemon: object) -> None:
    filler = small_mount / "filler"
    try:  # fill the filesystem to the last block (ENOSPC ends it)
        with filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass
    daemon: Daemon = await run_daemon(write_config(tmp_path, router=DRY_RUN,  # type: ignore[operator]
                                                   state_dir=small_mount))
    await daemon.submit(OperatorCommand(Action.FAILOVER, "disk full", "pytest"))
    await wait_for(daemon, lambda c: c.state == State.BACKUP)
    assert daemon.store._failing


@pytest.mark.root
async def test_read_only_state_directory_is_logged_and_the_daemon_keeps_working(
        tmp_path: Path, small_mount: Path, run_daemon: object) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    daemon: Daemon = await run_daemon(write_config(tmp_path, router=DRY_RUN,  # type: ignore[operator]
                                                   state_dir=small_mount))
    await daemon.submit(OperatorCommand(Action.FAILOVER, "read-only", "pytest"))
    await wait_for(daemon, lambda c: c.state == State.BACKUP)
    assert daemon.store._failing
