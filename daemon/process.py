"""`dslfailover run` as a process: the daemon on an event loop of its own, until it stops.

The loop's default executor runs each blocking call in a daemon thread that nobody waits
for at exit (`DaemonThreads`), so a stop is never held by a thread that hangs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .app import Daemon
from .config import Config, Secrets


class DaemonThreads(ThreadPoolExecutor):
    """The loop's default executor for the daemon process: each blocking call (paho's
    connect, getaddrinfo for a host name) runs in a daemon thread of its own, and nothing
    waits for them at exit. A resolver that hangs (DNS unreachable while the primary is
    down) must not hold the stop: asyncio.run would join it for as long as it hangs."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()

        def work() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting coroutine
                done.set_exception(exc)

        threading.Thread(target=work, name="blocking-call", daemon=True).start()
        return done

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: the threads are daemons and end with the process."""


def run_daemon(cfg: Config, secrets: Secrets) -> None:
    """The daemon until it stops (asyncio.run, with DaemonThreads as the executor)."""
    with asyncio.Runner() as runner:
        runner.get_loop().set_default_executor(DaemonThreads())
        runner.run(Daemon(cfg, secrets).run())
