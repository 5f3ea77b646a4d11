"""Waiting in the lab: ask a condition again and again under a deadline.

The lab's programs (the router emulator, sshd, Postfix, the daemon) say they are ready
through a file, a log line or a port, never through a callback, so everything that
waits for them polls. `poll` is the one loop; `until` is `poll` with a `TimeoutError`
that names what it waited for.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

# How often a condition is asked again: short, the lab's readiness checks are cheap.
STEP = 0.05


async def poll(ready: Callable[[], bool | Awaitable[bool]], timeout: float, *,
               step: float = STEP) -> bool:
    """Ask `ready` every `step` seconds until it says yes (True) or `timeout` seconds
    have passed (False). `ready` may raise to end the wait early (what it waits for
    has died); it is always asked at least once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = ready()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(step)


async def until(pred: Callable[[], bool], timeout: float, what: str,
                step: float = STEP) -> None:
    """Wait until `pred()` holds; `TimeoutError` naming `what` after `timeout` seconds."""
    if not await poll(pred, timeout, step=step):
        raise TimeoutError(f"{what}: not within {timeout:g}s")
