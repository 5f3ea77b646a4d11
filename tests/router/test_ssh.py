"""The ssh driver against a real OpenSSH sshd on loopback: strict host keys, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.lab.sshd import Sshd
from router_drivers import (
    RouterConnectError,
    RouterDriver,
    RouterMismatch,
    RouterRefused,
    RouterSettings,
    create_driver,
)

from .conftest import BACKUP, PRIMARY

# A "router" whose read commands print a fixed config: enough to exercise the session,
# refusals and save ordering without touching any interface.
READ_PRIMARY = ["printf 'inet 10.91.0.2/29 scope global wan0\\n'",
                "printf 'default via 10.91.0.1 dev wan0\\n'"]


def settings(sshd: Sshd, dialogue: dict[str, Any], **kw: Any) -> RouterSettings:
    base: dict[str, Any] = {
        "host": sshd.host, "port": sshd.port, "username": sshd.user,
        "key_file": sshd.client_key, "known_hosts": sshd.known_hosts, "interface": "wan0",
        "connect_timeout": 5.0, "step_timeout": 5.0, "dialogue": dialogue}
    return RouterSettings(**{**base, **kw})


async def test_reads_over_ssh_with_the_known_host_key(sshd: Sshd) -> None:
    driver = create_driver("ssh", settings(sshd, {"commands": {"read": READ_PRIMARY}}))
    assert await driver.read_wan() == PRIMARY
    assert "> printf" in driver.transcript()


async def test_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"   # another key for the same host and port
    other.write_text(sshd.other_host_key_line())
    driver = create_driver("ssh", settings(sshd, {"commands": {"read": READ_PRIMARY}},
                                           known_hosts=other))
    with pytest.raises(RouterConnectError, match="host key is not in known_hosts"):
        await driver.read_wan()


async def test_empty_known_hosts_refuses_rather_than_trusting_on_first_use(
        sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    driver = create_driver("ssh", settings(sshd, {"commands": {"read": READ_PRIMARY}},
                                           known_hosts=empty))
    with pytest.raises(RouterConnectError, match="refused"):
        await driver.read_wan()


def test_ssh_driver_requires_known_hosts() -> None:
    with pytest.raises(ValueError, match="known_hosts"):
        create_driver("ssh", RouterSettings(key_file=Path("/nonexistent")))


def saving_driver(sshd: Sshd, marker: Path, apply: list[str], **dialogue: Any) -> RouterDriver:
    """An ssh driver that reads READ_PRIMARY, runs `apply`, and saves by touching `marker`."""
    return create_driver("ssh", settings(sshd, {**dialogue, "commands": {
        "read": READ_PRIMARY, "apply": apply, "save": [f"touch {marker}"]}}))


async def test_failed_apply_command_stops_before_save(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "saved"
    driver = saving_driver(sshd, marker, [
        "true", "echo 'RTNETLINK answers: File exists' >&2; exit 2", "true"])
    with pytest.raises(RouterRefused, match="exited 2") as info:
        await driver.apply_wan(BACKUP)
    assert "File exists" in info.value.seen
    assert not marker.exists()


async def test_save_runs_after_every_apply_command_and_read_back_is_checked(
        sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "saved"
    driver = saving_driver(sshd, marker, ["true"])
    # the fixed read still reports PRIMARY after "applying" BACKUP: a mismatch
    with pytest.raises(RouterMismatch, match=r"after the apply the router runs 10\.91\.0\.2"):
        await driver.apply_wan(BACKUP)
    assert marker.exists()


async def test_shell_mode_runs_commands_at_the_prompt(sshd: Sshd) -> None:
    dialogue = {"shell": {"enabled": True}, "commands": {"read": READ_PRIMARY}}
    driver = create_driver("ssh", settings(sshd, dialogue))
    assert await driver.read_wan() == PRIMARY


async def test_shell_mode_refuses_on_an_error_line_and_skips_save(
        sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "saved"
    driver = saving_driver(sshd, marker, ["echo 'Error: no such interface'"],
                           shell={"enabled": True})
    with pytest.raises(RouterRefused, match="an error line") as info:
        await driver.apply_wan(BACKUP)
    assert "Error: no such interface" in info.value.seen
    assert not marker.exists()
