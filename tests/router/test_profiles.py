"""Both Netopia drivers on every emulated firmware profile, over real telnet.

Each profile is a documented variant (DESIGN §5): restart to apply, a banner above the
title, the extra menu level, Escape + Y/N save, Return commits each field, other labels,
the two-line interface listing, paging, confirmation questions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from router_drivers import RouterDriver, create_driver
from router_drivers.emulator import RouterState, profile, run_emulator

from .conftest import BACKUP, PASSWORD, PRIMARY, telnet_settings
from .profiles import DRIVER, OVERRIDES, RESTARTS


@pytest.fixture(params=sorted(OVERRIDES))
async def on_profile(request: pytest.FixtureRequest) -> AsyncIterator[
        tuple[str, RouterDriver, RouterState]]:
    name: str = request.param
    console, options = profile(name, password=PASSWORD)
    async with contextlib.AsyncExitStack() as stack:
        host, port, state = await stack.enter_async_context(
            run_emulator(console, PRIMARY, options=options))
        # loopback answers in milliseconds: a bar that has not moved in 0.3 s never will
        fast = {"screen": {"quiet": 0.3}} if console == "menu" else {}
        driver = create_driver(DRIVER[console], telnet_settings(
            host, port, dialogue={**OVERRIDES[name], **fast}))
        yield name, driver, state


async def test_fails_over_and_back_running_and_saving_each_config(
        on_profile: tuple[str, RouterDriver, RouterState]) -> None:
    name, driver, state = on_profile
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert (state.saved, state.runs) == (BACKUP, BACKUP)
    assert await driver.apply_wan(PRIMARY) == PRIMARY
    assert (state.saved, state.runs) == (PRIMARY, PRIMARY)
    assert state.restarts == (2 if RESTARTS[name] else 0)


async def test_restart_drop_is_expected_and_the_running_config_is_read_after(
        on_profile: tuple[str, RouterDriver, RouterState]) -> None:
    name, driver, _state = on_profile
    await driver.apply_wan(BACKUP)
    transcript = driver.transcript()
    if RESTARTS[name]:
        assert "dropped the session to restart" in transcript
        assert "back after the restart: runs 10.92.0.10/29" in transcript
        assert driver.timings["restart_wait"] > 0
    else:
        assert "restarting the router" not in transcript
        assert driver.timings["restart_wait"] == 0
    assert driver.timings["dialogue"] > 0


async def test_read_state_shows_running_and_saved(
        on_profile: tuple[str, RouterDriver, RouterState]) -> None:
    _, driver, _ = on_profile
    reading = await driver.read_state()
    assert (reading.running, reading.saved) == (PRIMARY, PRIMARY)


async def test_applying_what_it_runs_and_saves_changes_nothing(
        on_profile: tuple[str, RouterDriver, RouterState]) -> None:
    _, driver, state = on_profile
    assert await driver.apply_wan(PRIMARY) == PRIMARY
    assert "already at" in driver.transcript()
    assert (state.saves, state.restarts) == (0, 0)


async def test_transcript_masks_the_password(
        on_profile: tuple[str, RouterDriver, RouterState]) -> None:
    _, driver, _ = on_profile
    await driver.apply_wan(BACKUP)
    assert PASSWORD not in driver.transcript()
    assert "********" in driver.transcript()
