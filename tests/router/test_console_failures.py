"""Both Netopia consoles over real telnet: logins, refusals, hangs, read-back, secrets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from router_drivers import (
    RouterAuthError,
    RouterConnectError,
    RouterMismatch,
    RouterRefused,
    RouterTimeout,
    Secret,
    WanConfig,
    create_driver,
)
from tests.harness import free_port

from .conftest import BACKUP, PASSWORD, PRIMARY, DriverFactory, EmulatorFactory, telnet_settings

CONSOLES = [("menu", "netopia-menu"), ("cli", "netopia-cli")]
both = pytest.mark.parametrize(("console", "driver_name"), CONSOLES, ids=["menu", "cli"])


@both
async def test_wrong_password_is_an_auth_error_and_saves_nothing(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, state = await console_driver(console, settings=dict(password=Secret("nope")))
    with pytest.raises(RouterAuthError, match="refused the login"):
        await driver.apply_wan(BACKUP)
    assert state.saved == PRIMARY
    assert state.saves == 0


@both
async def test_router_locks_out_after_repeated_wrong_passwords(
        emulator: EmulatorFactory, console: str, driver_name: str) -> None:
    host, port, state = await emulator(console, max_tries=2)
    driver = create_driver(driver_name, telnet_settings(host, port, password=Secret("nope")))
    for _ in range(2):
        with pytest.raises(RouterAuthError):
            await driver.read_wan()
    good = create_driver(driver_name, telnet_settings(host, port))
    with pytest.raises(RouterAuthError, match="locked us out"):
        await good.read_wan()
    assert state.failed_logins == 2


@both
async def test_connection_refused_is_a_connect_error(console: str, driver_name: str) -> None:
    driver = create_driver(driver_name, telnet_settings("127.0.0.1", free_port()))
    with pytest.raises(RouterConnectError, match="cannot connect"):
        await driver.read_wan()


@both
@pytest.mark.parametrize("point", ["login", "set", "save"])
async def test_router_that_stops_answering_times_out_and_nothing_is_saved(
        console_driver: DriverFactory, console: str, driver_name: str, point: str) -> None:
    driver, state = await console_driver(console, settings=dict(step_timeout=0.5), hang_at=point)
    with pytest.raises(RouterTimeout, match="stopped answering") as info:
        await driver.apply_wan(BACKUP)
    assert state.saved == PRIMARY
    assert state.saves == 0
    assert "last text from the router" in str(info.value)
    assert PASSWORD not in str(info.value)


@both
async def test_refused_value_raises_naming_the_step_and_saves_nothing(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, state = await console_driver(console, refuse=frozenset({"gateway"}))
    with pytest.raises(RouterRefused) as info:
        await driver.apply_wan(BACKUP)
    assert "10.92.0.9" in info.value.step + info.value.message
    assert "not permitted" in info.value.seen or "cannot be set" in info.value.seen
    assert state.saved == PRIMARY
    assert state.saves == 0


@both
async def test_read_back_that_disagrees_is_a_mismatch_and_the_previous_config_is_put_back(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    # the router accepts the new gateway but silently keeps the old one
    driver, state = await console_driver(console, ignore=frozenset({"gateway"}))
    with pytest.raises(RouterMismatch, match="after the apply the router runs") as info:
        await driver.apply_wan(BACKUP)
    assert "the previous config is back: the router now runs 10.91.0.2/29" in str(info.value)
    assert state.saved == PRIMARY and state.runs == PRIMARY
    assert not info.value.saved


@both
async def test_password_never_in_logs_output_errors_or_transcripts(
        emulator: EmulatorFactory, console: str, driver_name: str,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    host, port, _ = await emulator(console)
    driver = create_driver(driver_name, telnet_settings(host, port))
    await driver.apply_wan(BACKUP)
    texts = [driver.transcript()]
    wrong = create_driver(driver_name, telnet_settings(host, port, password=Secret(
        PASSWORD + "x")))
    with pytest.raises(RouterAuthError) as info:
        await wrong.read_wan()
    texts += [wrong.transcript(), str(info.value), repr(info.value), info.value.seen]
    out = capsys.readouterr()
    texts += [caplog.text, out.out, out.err]
    assert "********" in driver.transcript()
    for text in texts:
        assert PASSWORD not in text


async def test_menu_logs_in_with_superuser_name_and_password(
        console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("menu", settings=dict(username="super"), username="super")
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert "Enter a Name:" in driver.transcript()


async def test_menu_logs_in_without_a_password_when_none_is_set(
        console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("menu", settings=dict(password=None), password=None)
    assert await driver.read_wan() == PRIMARY
    assert "Enter a Password" not in driver.transcript()


async def test_cli_logs_in_with_username_then_password(console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("cli", settings=dict(username="admin"), username="admin")
    assert await driver.read_wan() == PRIMARY
    assert "login:" in driver.transcript()


async def test_menu_restarts_when_the_console_asks_after_the_save(
        emulator: EmulatorFactory) -> None:
    host, port, state = await emulator("menu", ask_restart=True, restart_delay=0.5)
    driver = create_driver("netopia-menu", telnet_settings(
        host, port, dialogue={"restart": {"model": "asked"}}))
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert state.runs == BACKUP and state.restarts == 1
    transcript = driver.transcript()
    assert "Restart now?" in transcript
    assert "dropped the session to restart" in transcript


async def test_menu_escape_reverts_unsaved_fields_after_a_refusal(
        emulator: EmulatorFactory) -> None:
    host, port, state = await emulator("menu", refuse=frozenset({"gateway"}))
    driver = create_driver("netopia-menu", telnet_settings(host, port))
    with pytest.raises(RouterRefused):
        await driver.apply_wan(BACKUP)
    # the address was accepted as a pending edit, then reverted: a fresh read shows PRIMARY
    assert "Ethernet B IP Address = 10.92.0.10" in state.received
    assert "<Esc>" in driver.transcript()
    assert await create_driver("netopia-menu", telnet_settings(host, port)).read_wan() \
        == PRIMARY


def setting(*commands: str) -> dict[str, Any]:
    """Driver settings whose CLI dialogue sets the WAN with `commands`."""
    return {"dialogue": {"commands": {"set": list(commands)}}}


async def test_cli_gateway_off_the_subnet_is_refused_at_save(
        console_driver: DriverFactory) -> None:
    # a dialogue that forgets the netmask: the router keeps /29, on which the new gateway
    # is not, and refuses the save; nothing half-done is kept
    driver, state = await console_driver("cli", settings=setting(
        "set ip ethernet B address {address}", "set ip gateway {gateway}"))
    target = WanConfig.parse("10.92.0.10", "255.255.255.0", "10.92.0.200")
    with pytest.raises(RouterRefused, match="save") as info:
        await driver.apply_wan(target)
    assert "not on the ethernet B subnet" in info.value.seen
    assert state.saves == 0
    assert state.saved == PRIMARY


async def test_cli_bad_value_from_a_template_is_refused_and_nothing_saved(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("cli", settings=setting(
        "set ip ethernet B address {address}/{prefixlen}", "set ip gateway {gateway}"))
    with pytest.raises(RouterRefused, match=r"set ip ethernet B address 10\.92\.0\.10/29") \
            as info:
        await driver.apply_wan(BACKUP)
    assert 'invalid IP address "10.92.0.10/29"' in info.value.seen
    assert state.saves == 0


@both
async def test_password_asked_but_none_configured_is_an_auth_error(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, _ = await console_driver(console, settings=dict(password=None))
    with pytest.raises(RouterAuthError, match="none is configured"):
        await driver.read_wan()


async def test_menu_that_hangs_after_the_first_key_times_out(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("menu", settings=dict(step_timeout=0.5), hang_at="menu")
    with pytest.raises(RouterTimeout, match=r"select '.*stopped answering"):
        await driver.apply_wan(BACKUP)
    assert state.saves == 0


async def test_cli_restart_command_drops_the_session_and_the_router_comes_back(
        emulator: EmulatorFactory) -> None:
    host, port, _ = await emulator("cli", restart_delay=0.5)
    driver = create_driver("netopia-cli", telnet_settings(host, port, dialogue={
        "commands": {"logout": "restart"}}))
    assert await driver.read_wan() == PRIMARY
    outcomes: list[str] = []
    async with asyncio.timeout(5):
        while "back" not in outcomes:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                outcomes.append("refused")
            else:
                writer.close()
                if "refused" in outcomes:
                    outcomes.append("back")
            await asyncio.sleep(0.02)
    assert outcomes[0] == "refused"
    assert await create_driver("netopia-cli", telnet_settings(host, port)).read_wan() == PRIMARY


async def test_cli_refusal_leaves_config_mode_without_saving(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("cli", refuse=frozenset({"gateway"}))
    with pytest.raises(RouterRefused):
        await driver.apply_wan(BACKUP)
    assert state.received[-1] == "exit"
    assert "Configuration changes discarded." in driver.transcript()
    assert state.saves == 0


async def test_menu_timeout_shows_the_rendered_screen_not_escape_codes(
        console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("menu", settings=dict(step_timeout=0.5), hang_at="set")
    with pytest.raises(RouterTimeout) as info:
        await driver.apply_wan(BACKUP)
    assert "Ethernet B IP Address:" in info.value.seen
    assert "\x1b" not in str(info.value)
