"""daemon.stopping: a stop signal is recorded from the CLI's first line, honoured by the
loop that takes over, and given back to its default action for every other command.
Real signals to this process; every test puts the default handlers back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator

import pytest

from daemon import stopping


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    stopping._received.clear()
    yield
    stopping.restore()
    stopping._received.clear()


def test_a_recorded_sigterm_does_not_end_the_process_and_is_remembered() -> None:
    stopping.record_early()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stopping.requested()


def test_release_acts_on_a_recorded_sigint_and_restores_the_defaults() -> None:
    stopping.record_early()
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        stopping.release()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_the_loop_honours_a_stop_that_came_before_it() -> None:
    stopping.record_early()
    os.kill(os.getpid(), signal.SIGTERM)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        stopping.take_over(loop, stop.set)
        assert stop.is_set()
    finally:
        for sig in stopping.STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def test_unless_stopped_cancels_the_work_when_stop_comes_first() -> None:
    stop = asyncio.Event()
    never = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(stopping.unless_stopped(never, stop))
    await asyncio.sleep(0)
    stop.set()
    assert await waiting is False
    assert never.cancelled()


async def test_unless_stopped_says_the_work_finished_or_raises_its_error() -> None:
    stop = asyncio.Event()
    assert await stopping.unless_stopped(asyncio.sleep(0), stop) is True

    async def fails() -> None:
        raise OSError("refused")

    with pytest.raises(OSError, match="refused"):
        await stopping.unless_stopped(fails(), stop)


async def test_cancel_all_ends_a_task_whose_first_cancel_was_lost() -> None:
    """Python 3.11: a cancel that meets a finishing wait_for (aiomqtt's publish when its
    PUBACK comes in the same loop turn) is lost, and the task goes on; cancel_all repeats
    it. Before it, the MQTT sender went on like this and held the daemon's stop."""
    acked = asyncio.get_running_loop().create_future()

    async def sender() -> None:
        await asyncio.wait_for(acked, timeout=60)   # publish, waiting for the PUBACK
        await asyncio.Event().wait()                # the next wake-up: never comes

    task = asyncio.create_task(sender())
    await asyncio.sleep(0)
    acked.set_result(None)   # the PUBACK and the cancel in one loop turn
    task.cancel()
    await asyncio.sleep(0.01)
    if sys.version_info < (3, 12):
        assert not task.done(), "the cancel was not lost: this Python behaves"
    assert not await stopping.cancel_all([task], within=5.0)
    assert task.cancelled()
