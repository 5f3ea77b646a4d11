"""What the private server launchers share: a free port, a program started in a session
of its own (so its whole process group can be stopped), a wait until it is ready that
names what it waited for, and the stop.

The async launchers (`Sshd`, `PostfixInstance`) use all of it; `Mosquitto` (synchronous,
it also serves plain `with` blocks) and `SmtpSink` (in-process) use `free_port` and
`running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Protocol, TypeVar

from .netns import in_netns
from .poll import poll


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def running(server: S) -> AsyncIterator[S]:
    """`server` started for the duration of the block and stopped after it (also when
    the start fails half-way: `stop()` cleans up whatever `start()` made)."""
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


def file_tail(path: Path, size: int = 2000) -> str:
    """The last `size` characters of a server's log file ("" before it exists)."""
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def netns_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` run inside `netns` when one is given, else as it is."""
    return in_netns(netns, argv) if netns else list(argv)


async def start_in_session(argv: Sequence[str], *, netns: str | None,
                           stdout: IO[bytes] | int, stderr: IO[bytes] | int,
                           ) -> asyncio.subprocess.Process:
    """Start `argv` (inside `netns` when given) in a session of its own, stdin closed."""
    return await asyncio.create_subprocess_exec(
        *netns_argv(netns, argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True)


async def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False   # not listening (yet)
    writer.close()
    return True


async def wait_started(proc: asyncio.subprocess.Process, ready: Callable[[], Awaitable[bool]],
                       *, name: str, not_ready: str, timeout: float,
                       log_tail: Callable[[], str]) -> None:
    """Wait until `ready()` says the server serves; `RuntimeError` with the tail of its
    log when it exits first (`<name> exited N: ...`) or is not ready within `timeout`
    seconds (`<not_ready> within Ns: ...`)."""
    async def started() -> bool:
        if proc.returncode is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}: {log_tail()}")
        return await ready()

    if not await poll(started, timeout):
        raise RuntimeError(f"{not_ready} within {timeout:g}s: {log_tail()}")


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


async def stop_group(proc: asyncio.subprocess.Process, *, grace: float,
                     ask: Callable[[], Awaitable[None]] | None = None) -> None:
    """Ask the server to stop (`ask`, or SIGTERM to its process group), give it `grace`
    seconds to exit, then SIGKILL whatever is left of the group."""
    if proc.returncode is not None:
        return
    if ask is None:
        _signal_group(proc, signal.SIGTERM)
    else:
        await ask()
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        pass   # killed below
    _signal_group(proc, signal.SIGKILL)
    await proc.wait()
