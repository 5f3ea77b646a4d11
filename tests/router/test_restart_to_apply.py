"""Saved versus running: the promises of `ApplySkeleton` on restart-to-apply consoles.

Real Netopia units run a saved change only after a restart. These tests make the
emulator misbehave the ways a real unit can, and check that the driver never leaves the
saved config different from the running one without saying so.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import pytest

from router_drivers import (
    RouterMismatch,
    RouterParseError,
    RouterRefused,
    RouterTimeout,
    WanConfig,
    create_driver,
)
from router_drivers.emulator import RouterState
from router_drivers.menu_walk import ItemMissing

from .conftest import BACKUP, PRIMARY, DriverFactory, EmulatorFactory, telnet_settings

both = pytest.mark.parametrize(("console", "driver_name"),
                               [("menu", "netopia-menu"), ("cli", "netopia-cli")],
                               ids=["menu", "cli"])
E = TypeVar("E", bound=Exception)
# Bounds the waits that must end early: far below the step timeout the test sets.
EARLY = 8.0


@both
async def test_router_that_boots_the_old_config_is_put_back_and_named(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, state = await console_driver(console, boot_keeps_old=True)
    with pytest.raises(RouterMismatch) as info:
        await driver.apply_wan(BACKUP)
    message = str(info.value)
    assert "runs 10.91.0.2/29 via 10.91.0.1 but saves 10.92.0.10/29 via 10.92.0.9" in message
    assert "the previous config is back: the router now runs 10.91.0.2/29" in message
    assert (state.saved, state.runs) == (PRIMARY, PRIMARY)


@both
@pytest.mark.parametrize(("target", "restarts"), [(PRIMARY, 0), (BACKUP, 1)],
                         ids=["primary: save only", "backup: restart only"])
async def test_saved_but_not_restarted_is_not_already_at_target(
        console_driver: DriverFactory, console: str, driver_name: str, target: WanConfig,
        restarts: int) -> None:
    # a crash after `save`, before the restart: it saves BACKUP and still runs PRIMARY;
    # to PRIMARY saving it is enough, to BACKUP only the restart is missing
    driver, state = await console_driver(console)
    state.saved = BACKUP
    assert await driver.apply_wan(target) == target
    assert "already at" not in driver.transcript()
    assert (state.saved, state.runs, state.restarts) == (target, target, restarts)
    assert state.saves == (1 if target == PRIMARY else 0)


@both
async def test_plan_shows_the_restart_and_the_wait(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, _ = await console_driver(console)
    steps = driver.plan(await driver.read_state(), BACKUP)
    assert any("restart" in s.lower() for s in steps)
    assert "come back" in steps[-1]


@both
async def test_idle_timeout_disconnect_before_the_save_is_a_reconnect(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, state = await console_driver(console, idle_drop_at="set")
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert "session lost before the save" in driver.transcript()
    assert state.idle_dropped and state.saves == 1


@both
async def test_router_that_never_comes_back_is_a_timeout_with_the_change_saved(
        console_driver: DriverFactory, console: str, driver_name: str) -> None:
    driver, _ = await console_driver(console, settings=dict(restart_timeout=1.0),
                                     restart_delay=30.0)
    with pytest.raises(RouterTimeout, match="did not come back within 1s") as info:
        await driver.apply_wan(BACKUP)
    assert info.value.saved


async def test_banner_above_the_title_is_not_taken_for_the_title(
        console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("menu", banner="Netopia R9100 v5.4.1  (c) Netopia, Inc.")
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert "Netopia R9100 v5.4.1" in driver.transcript()


async def read_error(console_driver: DriverFactory, status_step: dict[str, str],
                     error: type[E], **options: Any) -> tuple[E, RouterState]:
    """The error a menu read raises with `status_step` as its status screen's path; it
    must come early, far below the step timeout."""
    driver, state = await console_driver("menu", settings={
        "step_timeout": 30.0, "dialogue": {"status": {"path": [status_step]}}}, **options)
    async with asyncio.timeout(EARLY):
        with pytest.raises(error) as info:
            await driver.read_wan()
    return info.value, state


async def test_end_of_a_menu_without_the_label_lists_its_items_at_once(
        console_driver: DriverFactory) -> None:
    missing, state = await read_error(console_driver, {
        "item": "Router Status...", "title": "Router Status"}, ItemMissing, wrap=False)
    assert "no item labelled 'Router Status...'" in missing.message
    assert "Quick View..." in missing.items
    assert "System Configuration..." in missing.items
    assert state.saves == 0


async def test_unexpected_screen_names_the_title_expected_and_the_title_seen(
        console_driver: DriverFactory) -> None:
    wrong, _ = await read_error(console_driver, {
        "item": "Quick View...", "title": "(?i)^general status$"}, RouterParseError)
    assert "expected a screen titled /(?i)^general status$/" in wrong.message
    assert "'Quick View'" in wrong.message


async def test_cli_timeout_names_the_pattern_it_waited_for(console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("cli", settings=dict(step_timeout=0.5), hang_at="login")
    with pytest.raises(RouterTimeout) as info:
        await driver.read_wan()
    assert "prompt /" in info.value.message or "shell /" in info.value.message


async def test_cli_paging_and_confirmations_are_answered(console_driver: DriverFactory) -> None:
    driver, state = await console_driver("cli", page_lines=3, confirm=True)
    assert await driver.apply_wan(BACKUP) == BACKUP
    transcript = driver.transcript()
    assert "<more: space>" in transcript and "<confirm: y>" in transcript
    assert state.restarts == 1


async def test_return_commits_fields_so_a_refusal_sets_the_committed_ones_back(
        emulator: EmulatorFactory) -> None:
    host, port, state = await emulator("menu", save_model="return",
                                       refuse=frozenset({"gateway"}))
    driver = create_driver("netopia-menu", telnet_settings(
        host, port, dialogue={"save": {"model": "return"}}))
    with pytest.raises(RouterRefused):
        await driver.apply_wan(BACKUP)
    # the address was committed by its Return, then set back: nothing half-applied saved
    assert "Ethernet B IP Address = 10.92.0.10" in state.received
    assert (state.saved, state.runs, state.restarts) == (PRIMARY, PRIMARY, 0)
    assert "set the committed fields back" in driver.transcript()
