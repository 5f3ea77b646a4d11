"""The emulator keeps nothing of a finished session (a leak bench found telnetlib3's
queue of new clients holding the last 1000 sessions, ~50 KB each). Counts, not timings."""

from __future__ import annotations

import gc

import pytest
from telnetlib3.server_base import BaseServer

from tests.harness import wait_until

from .conftest import DriverFactory

SESSIONS = 30


def live_sessions() -> int:
    """telnetlib3 server protocols alive: one per session not yet freed."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, BaseServer))


@pytest.mark.parametrize("console", ["cli", "menu"])
async def test_finished_sessions_are_freed(console_driver: DriverFactory, console: str) -> None:
    driver, state = await console_driver(console)
    before = live_sessions()
    for _ in range(SESSIONS):
        await driver.read_wan()
    assert state.sessions == SESSIONS
    # telnetlib3's list of clients keeps the last one until the next connection prunes
    # it; its close may still be on its way
    await wait_until(lambda: live_sessions() <= before + 1, 5.0,
                     f"the {SESSIONS} sessions freed (at most {before + 1} alive)",
                     detail=live_sessions)
