"""One test suite for every driver (napalm style): read, fail over, fail back, no-op.

netopia-menu and netopia-cli run against their emulators over real telnet on loopback;
ssh against a private sshd that drives a network namespace (exec channels, and the same
commands typed at an interactive prompt); linux against a namespace directly; dry-run
against nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from daemon.lab.sshd import Sshd
from router_drivers import RouterDriver, RouterSettings, Secret, create_driver

from .conftest import BACKUP, PASSWORD, PRIMARY, DriverFactory, EmulatorFactory, telnet_settings


def ssh_dialogue(netns: str) -> dict[str, Any]:
    """The default Linux templates, aimed at the test's namespace (as a user would)."""
    ip = f"ip -n {netns}"
    return {"commands": {
        "read": [f"{ip} -4 -o addr show dev {{interface}}", f"{ip} -4 route show default"],
        "apply": [f"{ip} -4 addr flush dev {{interface}}",
                  f"{ip} addr add {{address}}/{{prefixlen}} dev {{interface}}",
                  f"{ip} route replace default via {{gateway}} dev {{interface}}"]}}


@pytest.fixture(params=[
    "netopia-menu", "netopia-cli", "dry-run",
    pytest.param("ssh", marks=pytest.mark.root),
    pytest.param("ssh-shell", marks=pytest.mark.root),
    pytest.param("linux", marks=pytest.mark.root),
])
async def driver(request: pytest.FixtureRequest, emulator: EmulatorFactory) -> AsyncIterator[
        RouterDriver]:
    name: str = request.param
    if name in ("netopia-menu", "netopia-cli"):
        host, port, _ = await emulator("menu" if name == "netopia-menu" else "cli")
        yield create_driver(name, telnet_settings(host, port))
    elif name == "dry-run":
        yield create_driver(name, RouterSettings(initial=PRIMARY))
    elif name == "linux":
        netns = request.getfixturevalue("router_netns")
        yield create_driver(name, RouterSettings(interface="wan0", netns=netns))
    else:
        netns = request.getfixturevalue("router_netns")
        sshd: Sshd = request.getfixturevalue("sshd")
        dialogue = ssh_dialogue(netns)
        if name == "ssh-shell":  # the same commands typed at an interactive prompt
            dialogue["shell"] = {"enabled": True}
        yield create_driver("ssh", RouterSettings(
            host=sshd.host, port=sshd.port, username=sshd.user, key_file=sshd.client_key,
            known_hosts=sshd.known_hosts, interface="wan0", dialogue=dialogue,
            password=Secret(PASSWORD), connect_timeout=5.0, step_timeout=5.0))


async def test_read_wan_reports_the_routers_config(driver: RouterDriver) -> None:
    assert await driver.read_wan() == PRIMARY


async def test_apply_backup_then_primary_reads_each_back(driver: RouterDriver) -> None:
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert await driver.read_wan() == BACKUP
    assert await driver.apply_wan(PRIMARY) == PRIMARY
    assert await driver.read_wan() == PRIMARY


async def test_applying_the_current_config_changes_nothing_and_says_so(
        driver: RouterDriver) -> None:
    assert await driver.apply_wan(PRIMARY) == PRIMARY
    assert "nothing changed" in driver.transcript()


async def test_transcript_never_shows_the_password(driver: RouterDriver) -> None:
    await driver.apply_wan(BACKUP)
    assert PASSWORD not in driver.transcript()
    assert driver.transcript().strip()


async def test_driver_satisfies_the_protocol(driver: RouterDriver) -> None:
    assert isinstance(driver, RouterDriver)


async def test_menu_survives_repeated_failovers_with_fragmented_output(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("menu")
    for _ in range(4):
        assert await driver.apply_wan(BACKUP) == BACKUP
        assert await driver.apply_wan(PRIMARY) == PRIMARY
    assert state.saves == 8
    assert state.options.fragment
