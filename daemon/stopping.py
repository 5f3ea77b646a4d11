"""SIGTERM and SIGINT stop the daemon cleanly at any moment of the process (README "Stopping").

The CLI calls `record_early()` first thing, before it imports anything slow: from then on
a stop signal is recorded instead of killing the process. The daemon's event loop takes
the signals over (`take_over`) and honours a stop that came before it existed; every
other command gives the default actions back (`release`), acting at once on a signal
that came meanwhile. Only the interpreter's own start comes before `record_early`.

Imports nothing slow (asyncio only for type checking): it runs before everything else.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# the defaults `release` and `restore` put back (SIGINT raises KeyboardInterrupt)
_DEFAULTS: dict[int, Callable[[int, FrameType | None], object] | int] = {
    signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}

# How often a cancel is repeated for a task that has not ended. Python 3.11's wait_for (under
# aiomqtt's publish, for one) returns the result instead of raising when the future it awaits
# finishes as the cancel comes: the cancel is lost and the task goes on as if nothing happened.
CANCEL_AGAIN = 0.05

_received: list[int] = []   # the stop signals recorded before the loop took over


def _record(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)


def record_early() -> None:
    """From now on a stop signal is recorded, not fatal, until the loop takes over.
    Outside the main thread (a command run by a test in a thread) nothing is installed:
    only the main thread may set signal handlers (ValueError)."""
    for sig in STOP_SIGNALS:
        with contextlib.suppress(ValueError):
            signal.signal(sig, _record)


def requested() -> bool:
    """Whether a stop signal came before the loop took over."""
    return bool(_received)


def restore() -> None:
    """The default actions back where `record_early` is still in place."""
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is _record:
            signal.signal(sig, _DEFAULTS[sig])


def release() -> None:
    """Not the daemon: the default actions back, and a signal recorded meanwhile acted on
    now (SIGTERM ends the process, SIGINT raises KeyboardInterrupt)."""
    restore()
    if _received:
        signal.raise_signal(_received[0])


def take_over(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """From inside the loop: the stop signals call `stop`; one recorded before does now.

    The loop's handlers are in place before the record is read, so no signal falls
    between the two. Outside the main thread (no signals there) nothing is installed.
    """
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
    if _received:
        stop()


async def unless_stopped(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first (then `work` is cancelled): whether it
    finished. Its error, if it failed, is raised. For a wait that must not hold a stop
    (connecting to a broker, a subscription's answer)."""
    import asyncio  # inside a running loop only: this module is imported before asyncio

    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()
    return True


async def cancel_all(tasks: Iterable[asyncio.Task[Any]], within: float
                     ) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait until they have ended, cancelling again every CANCEL_AGAIN
    (a lost cancel, see there), for at most `within` seconds: those still running then."""
    import asyncio  # inside a running loop only (see unless_stopped)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {t for t in tasks if not t.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(CANCEL_AGAIN, within))
    return pending
