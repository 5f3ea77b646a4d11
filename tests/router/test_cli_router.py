"""`dslfailover router show|apply` as a real process against an emulator on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.harness import config_toml, daemon_config, finished, merged, secret_file

from .conftest import BACKUP, PASSWORD, PRIMARY, EmulatorFactory

# Bounds one CLI process (start-up + one router session on loopback).
CLI_TIMEOUT = 60.0


def write_config(tmp: Path, driver: str, port: int, password: str = PASSWORD,
                 router: Mapping[str, Any] | None = None) -> Path:
    """A config for the router CLI; `router` is laid over its `[router]` table."""
    secret_file(tmp / "router.password", password)
    return daemon_config(
        tmp, state_dir=None, control=None, primary={"interval": None, "timeout": None},
        router=merged({"driver": driver, "host": "127.0.0.1", "port": port,
                       "password_file": str(tmp / "router.password"),
                       "connect_timeout": 2.0, "step_timeout": 2.0, "live_proof": None},
                      router or {}))


async def cli(*args: str) -> tuple[int, str, str]:
    return await finished(await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon.cli", "router", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE), CLI_TIMEOUT)


both = pytest.mark.parametrize(("console", "driver"), [("menu", "netopia-menu"),
                                                       ("cli", "netopia-cli")],
                               ids=["menu", "cli"])


@both
async def test_router_show_json_reports_the_circuit(
        emulator: EmulatorFactory, tmp_path: Path, console: str, driver: str) -> None:
    _, port, _ = await emulator(console)
    config = write_config(tmp_path, driver, port)
    transcript = tmp_path / "transcript.txt"
    code, out, err = await cli("show", "-c", str(config), "--json",
                               "--transcript", str(transcript))
    assert code == 0, err
    assert json.loads(out) == {**PRIMARY.as_dict(), "prefixlen": 29, "circuit": "primary",
                               "driver": driver,
                               "saved": {**PRIMARY.as_dict(), "circuit": "primary"}}
    assert "********" in transcript.read_text()
    assert PASSWORD not in transcript.read_text() + out + err


@both
async def test_router_apply_backup_moves_the_router_and_reads_back(
        emulator: EmulatorFactory, tmp_path: Path, console: str, driver: str) -> None:
    _, port, state = await emulator(console)
    code, out, err = await cli("apply", "backup", "-c", str(write_config(tmp_path, driver,
                                                                         port)))
    assert code == 0, err
    assert "router on backup: 10.92.0.10/29 via 10.92.0.9 (read back after the apply" in out
    assert "restart_wait" in out
    assert (state.saved, state.runs) == (BACKUP, BACKUP)


async def test_router_apply_dry_run_shows_commands_and_changes_nothing(
        emulator: EmulatorFactory, tmp_path: Path) -> None:
    _, port, state = await emulator("cli")
    code, out, _ = await cli("apply", "backup", "--dry-run", "-c",
                             str(write_config(tmp_path, "netopia-cli", port)))
    assert code == 0
    assert "set ip gateway 10.92.0.9" in out
    assert "router runs 10.91.0.2/29 via 10.91.0.1 (saved too) (circuit: primary)" in out
    assert "  restart\n" in out
    assert (state.saves, state.restarts) == (0, 0)
    assert state.saved == PRIMARY


async def test_router_error_exits_1_with_the_step_on_stderr(
        emulator: EmulatorFactory, tmp_path: Path) -> None:
    _, port, state = await emulator("cli")
    config = write_config(tmp_path, "netopia-cli", port, password="wrong-" + PASSWORD)
    code, out, err = await cli("apply", "backup", "-c", str(config))
    assert code == 1
    assert "failed at login: the router refused the login" in err
    assert "(nothing was saved)" in err
    assert PASSWORD not in out + err
    assert state.saves == 0


async def test_unusable_config_exits_78(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(config_toml(primary=None, mqtt=None, router={
        "driver": "netopia-cli", "live_proof": None, "primary": None, "backup": None}))
    code, _, err = await cli("show", "-c", str(config))
    assert code == 78
    assert "router.primary" in err


async def test_bad_dialogue_override_exits_78_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "netopia-menu", 2323, router={
        "dialogue": {"edit": {"fields": {"adress": "WAN IP"}}}})
    code, _, err = await cli("show", "-c", str(config))
    assert code == 78
    assert "router.dialogue.edit.fields.adress: unknown key" in err


async def test_router_show_says_when_the_saved_config_differs(
        emulator: EmulatorFactory, tmp_path: Path) -> None:
    _, port, state = await emulator("cli")
    state.saved = BACKUP  # saved, not yet restarted
    code, out, err = await cli("show", "-c", str(write_config(tmp_path, "netopia-cli", port)))
    assert code == 0, err
    assert "WAN 10.91.0.2" in out and "circuit: primary; what the router runs" in out
    assert "SAVED 10.92.0.10" in out and "after its next restart" in out
