"""Fault injection on the in-process daemon: a hanging router, an unreachable backup MX,
a state directory that is read-only or full. The daemon keeps running and says what is
wrong; nothing is half-done.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from daemon.model import Action, EventKind, MailPath, OperatorCommand, State
from router_drivers.emulator import EmulatorOptions, run_emulator
from tests.harness import (
    BACKUP,
    PRIMARY,
    daemon_config,
    free_port,
    running_daemon,
    secret_file,
    wait_daemon,
    wait_state,
)

PASSWORD = "fault-pw"


def write_config(tmp: Path, *, router: dict[str, Any] | None = None,
                 state_dir: Path | None = None, mx_port: int | None = None) -> Path:
    secret_file(tmp / "router.password", PASSWORD)
    sections: dict[str, Any] = {"site": "faults", "actions": {"retry_initial": 0.5}}
    if router is not None:
        sections["router"] = router
    if state_dir is not None:
        sections["state_dir"] = str(state_dir)
    if mx_port is not None:
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp / "id"))
        (tmp / "known_hosts").write_text("")
        sections["backup_mx"] = {
            "host": "127.0.0.1", "port": mx_port, "key_file": "id",
            "known_hosts": "known_hosts", "domain": "example.net",
            "nexthop": "smtp:[127.0.0.1]:25", "connect_timeout": 2.0}
    return daemon_config(tmp, **sections)


async def test_router_that_hangs_mid_dialogue_is_a_fault_then_a_retry_succeeds(
        tmp_path: Path) -> None:
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password=PASSWORD)
                            ) as (_, port, router):
        cfg = write_config(tmp_path, router={
            "driver": "netopia-cli", "host": "127.0.0.1", "port": port,
            "password_file": "router.password", "step_timeout": 0.5})
        async with running_daemon(cfg) as daemon:
            router.options = replace(router.options, hang_at="set")
            await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
            await wait_state(daemon, State.FAULT)
            assert router.saved == PRIMARY and router.saves == 0
            assert daemon.ctx is not None and "failover failed" in daemon.ctx.reason
            router.options = replace(router.options, hang_at=None)
            await wait_state(daemon, State.BACKUP)
            assert router.saved == BACKUP


def mx_checks(daemon: Any) -> int:
    """How many backup MX checks have been audited (passed or failed)."""
    return sum(1 for e in daemon.audit.recent if "backup MX" in e.reason)


async def test_unreachable_backup_mx_on_backup_raises_an_alarm_and_stays_on_backup(
        tmp_path: Path) -> None:
    cfg = write_config(tmp_path, mx_port=free_port())  # nobody listens
    async with running_daemon(cfg) as daemon:
        await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
        await wait_daemon(daemon, lambda d: state_of_backup_idle(d),
                          "state backup with no MX action in flight")
        assert daemon.ctx is not None and daemon.ctx.mail_path == MailPath.FAILING
        alarms = [e for e in daemon.audit.recent if e.kind == EventKind.PROBE_ALARM]
        assert any("backup MX check failed" in e.reason for e in alarms)
        # a later verification that still fails keeps us on backup
        checks = mx_checks(daemon)
        await daemon.submit(OperatorCommand(Action.VERIFY, "again", "pytest"))
        await wait_daemon(daemon, lambda d: mx_checks(d) > checks and state_of_backup_idle(d),
                          "the second MX verification to end")
        assert daemon.ctx.state == State.BACKUP


def state_of_backup_idle(daemon: Any) -> bool:
    ctx = daemon.ctx
    return ctx is not None and ctx.state == State.BACKUP and ctx.mx_job is None


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mount: Path) -> None:
    """Fill the filesystem to the last block (ENOSPC ends it)."""
    try:
        with (mount / "filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass


def read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


@pytest.mark.root
@pytest.mark.parametrize("spoil", [fill, read_only], ids=["full", "read-only"])
async def test_a_spoilt_state_directory_is_logged_and_the_daemon_keeps_working(
        tmp_path: Path, small_mount: Path, spoil: Any) -> None:
    spoil(small_mount)
    async with running_daemon(write_config(tmp_path, state_dir=small_mount)) as daemon:
        await daemon.submit(OperatorCommand(Action.FAILOVER, spoil.__name__, "pytest"))
        await wait_state(daemon, State.BACKUP)
        assert daemon.store._failing
