"""One home for what the daemon-level tests share (STYLE 15): the site's WAN configs, a
free loopback port, a config builder, the daemon running in this event loop or as a
`dslfailover run` process, and waits that name what they waited for (STYLE 16).

    cfg = daemon_config(tmp_path, router={"driver": "netopia-cli", "port": port})
    async with running_daemon(cfg) as daemon:
        await daemon.submit(OperatorCommand(Action.FAILOVER, "test", "pytest"))
        await wait_state(daemon, State.BACKUP)

Configs are dicts written with tomli-w: a test names the sections and keys it changes,
the rest are the defaults below (dry-run router, no MQTT, no live proof, 0.2 s rounds to
127.0.0.1, state and control socket in the test's temp dir).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from daemon.app import Daemon
from daemon.config import load_config, load_secrets
from daemon.control import ControlError, request
from daemon.lab.launcher import free_port
from daemon.lab.poll import poll
from daemon.model import State
from router_drivers import WanConfig

T = TypeVar("T")
Status = dict[str, Any]

# Addresses in 10.91/10.92: never the example config's documentation addresses, and no
# traffic goes to them anyway (the dry-run driver and the emulators keep them in memory).
PRIMARY = WanConfig.parse("10.91.0.2", "255.255.255.248", "10.91.0.1")
BACKUP = WanConfig.parse("10.92.0.10", "255.255.255.248", "10.92.0.9")

# The dslfailover console script of this virtual environment.
BIN = Path(sys.executable).parent / "dslfailover"
# Bounds a daemon's start until its first decision (the router read, one probe round).
START_TIMEOUT = 20.0
# Bounds a daemon's stop: an in-flight router action gets the daemon's own grace period.
STOP_TIMEOUT = 40.0
# Bounds one control socket request of the process harness.
CONTROL_TIMEOUT = 5.0
# How often the waits below look again.
POLL = 0.02

__all__ = ["free_port"]  # the lab's, re-exported: tests import their helpers from here

# -- waits ----------------------------------------------------------------------------

def _timed_out(what: str, timeout: float, detail: Callable[[], object] | None) -> str:
    more = "" if detail is None else f"; last seen: {detail()!r}"
    return f"timed out after {timeout:g}s waiting for {what}{more}"


async def wait_until(pred: Callable[[], object], timeout: float, what: str, *,
                     detail: Callable[[], object] | None = None, step: float = POLL) -> None:
    """Poll `pred` until it holds; else an AssertionError naming `what` (and `detail()`,
    what was last seen). The loop is the lab's own (daemon.lab.poll)."""
    if not await poll(lambda: bool(pred()), timeout, step=step):
        raise AssertionError(_timed_out(what, timeout, detail))


def wait_until_sync(pred: Callable[[], object], timeout: float, what: str, *,
                    detail: Callable[[], object] | None = None, step: float = POLL) -> None:
    """wait_until for tests without an event loop (threads, subprocesses)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(what, timeout, detail))
        time.sleep(step)


async def wait_polled(fetch: Callable[[], Awaitable[T]], pred: Callable[[T], bool],
                      timeout: float, what: str, *, step: float = POLL) -> T:
    """Fetch (awaiting) until `pred` holds for what came, and return that; the failure
    shows the last."""
    seen: list[T] = []

    async def ready() -> bool:
        seen[:] = [await fetch()]
        return pred(seen[0])

    if not await poll(ready, timeout, step=step):
        raise AssertionError(_timed_out(what, timeout, lambda: seen[0]))
    return seen[0]


async def stopped(task: asyncio.Task[None], stop: asyncio.Event, timeout: float) -> None:
    """Set `stop` and wait for `task` to end by itself (its error raised), at most
    `timeout` seconds; cancelled if it has not."""
    stop.set()
    try:
        async with asyncio.timeout(timeout):
            await task
    finally:
        task.cancel()


@contextlib.asynccontextmanager
async def served(serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
                 ready: Callable[[], bool | Awaitable[bool]], what: str,
                 timeout: float = START_TIMEOUT) -> AsyncIterator[asyncio.Task[None]]:
    """`serve(stop)` in a task until `ready()` says it serves (its own error if it ends
    first); afterwards `stop` is set and the task awaited (bounded), after a failure too."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop), name=what)

    async def up() -> bool:
        if task.done():
            await task   # raises its setup error
            raise AssertionError(f"{what} ended before it served")
        answer = ready()
        return bool(await answer) if inspect.isawaitable(answer) else bool(answer)

    try:
        if not await poll(up, timeout, step=0.01):
            raise AssertionError(_timed_out(f"{what} to serve", timeout, None))
        yield task
    finally:
        with contextlib.suppress(Exception):   # its own error was raised above, if any
            await stopped(task, stop, STOP_TIMEOUT)


async def finished(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, str]:
    """Its exit code, stdout and stderr once `proc` has ended; killed after `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.contextmanager
def in_own_loop(make: Callable[[], contextlib.AbstractAsyncContextManager[T]]
                ) -> Iterator[T]:
    """Enter an async context manager on an event loop of its own, in a thread: for a
    synchronous fixture whose server outlives any one test's loop (an sshd per module),
    and that may be set up while a test's loop runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="own-loop", daemon=True)
    thread.start()
    try:
        cm = make()
        value = asyncio.run_coroutine_threadsafe(cm.__aenter__(), loop).result(START_TIMEOUT)
        try:
            yield value
        finally:
            asyncio.run_coroutine_threadsafe(cm.__aexit__(None, None, None), loop).result(
                STOP_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()


# -- config ---------------------------------------------------------------------------

def wans(primary: WanConfig = PRIMARY, backup: WanConfig = BACKUP) -> dict[str, Any]:
    """`[router.primary]` and `[router.backup]` as router keys."""
    return {name: {"address": str(w.address), "netmask": str(w.netmask),
                   "gateway": str(w.gateway)}
            for name, w in (("primary", primary), ("backup", backup))}


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it, tables merged key by key; None removes a key."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def config_dict(tmp: Path | None = None, **sections: Any) -> dict[str, Any]:
    """The test daemon's config as a dict: the defaults with `sections` laid over them.

    Without a live proof: a test without a lab has no circuit to prove (it would ping
    the WAN gateways above, which exist nowhere); lab tests prove the circuits for real.
    """
    base: dict[str, Any] = {
        "site": "test",
        "primary": {"targets": ["127.0.0.1"], "interval": 0.2, "timeout": 0.5},
        "router": {"driver": "dry-run", "live_proof": False, **wans()},
        "mqtt": {"enabled": False},
    }
    if tmp is not None:
        base["state_dir"] = str(tmp / "state")
        base["control"] = {"socket": str(tmp / "control.sock")}
    return merged(base, sections)


def config_toml(tmp: Path | None = None, **sections: Any) -> str:
    """config_dict as TOML text (for parse_config)."""
    return tomli_w.dumps(config_dict(tmp, **sections))


def daemon_config(tmp: Path, name: str = "dslfailover.toml", **sections: Any) -> Path:
    """Write config_dict(tmp, **sections) to tmp/name; relative paths in it (password
    and key files) are then relative to tmp."""
    path = tmp / name
    path.write_text(config_toml(tmp, **sections))
    return path


def secret_file(path: Path, value: str) -> Path:
    """A one-line secret file (a router or MQTT password), owner-only."""
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


# -- the daemon in this event loop ----------------------------------------------------

def state_of(daemon: Daemon) -> State | None:
    """The machine's state, None before its first step."""
    return None if daemon.ctx is None else daemon.ctx.state


def describe(daemon: Daemon) -> str:
    """What a failed wait shows: the state, its reason and the last audited reasons."""
    ctx = daemon.ctx
    if ctx is None:
        return "not started"
    events = [e.reason for e in daemon.audit.recent][-6:]
    return f"state {ctx.state.value} ({ctx.reason!r}); last events {events}"


async def wait_daemon(daemon: Daemon, pred: Callable[[Daemon], bool], what: str,
                      timeout: float = START_TIMEOUT) -> None:
    await wait_until(lambda: daemon.ctx is not None and pred(daemon), timeout, what,
                     detail=lambda: describe(daemon))


async def wait_state(daemon: Daemon, *states: State, timeout: float = START_TIMEOUT) -> None:
    names = " or ".join(s.value for s in states)
    await wait_daemon(daemon, lambda d: state_of(d) in states, f"state {names}", timeout)


@contextlib.asynccontextmanager
async def running_daemon(config: Path, *, ready: Sequence[State] = (State.PRIMARY,
                                                                   State.BACKUP),
                         timeout: float = START_TIMEOUT, **kw: Any) -> AsyncIterator[Daemon]:
    """`Daemon(config)` running in a task of this loop, in one of the `ready` states
    (none: at once); stopped through its shutdown event afterwards, after a failure too.
    `kw` goes to `Daemon` (a driver or MX port of the test's own)."""
    cfg = load_config(config)
    shutdown = asyncio.Event()
    daemon = Daemon(cfg, load_secrets(cfg), shutdown=shutdown, **kw)
    task = asyncio.create_task(daemon.run(), name="daemon-under-test")
    try:
        if ready:
            names = " or ".join(s.value for s in ready)
            await wait_until(lambda: task.done() or state_of(daemon) in ready, timeout,
                             f"the daemon in state {names}", detail=lambda: describe(daemon))
        if task.done():
            task.result()   # its exception, if it died
            raise AssertionError("the daemon stopped by itself")
        yield daemon
    finally:
        await stopped(task, shutdown, STOP_TIMEOUT)


# -- the daemon as a `dslfailover run` process ----------------------------------------

class DaemonProcess:
    """`dslfailover run -c CONFIG` in its own session (so kill -9 takes all of it),
    asked over its control socket. `prefix` runs it through another command first
    (`ip netns exec NS`)."""

    def __init__(self, config: Path, *, log: Path | None = None,
                 prefix: Sequence[str] = (), args: Sequence[str] = ()) -> None:
        self.config = config
        self.log = log
        self.socket = Path(load_config(config).control.socket)
        argv = [*prefix, str(BIN), "run", "-c", str(config), *args]
        if log is None:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        else:
            with log.open("ab") as out:
                self.proc = subprocess.Popen(argv, stdout=out, stderr=out,
                                             start_new_session=True)

    async def status(self) -> Status:
        """The status, or {} while nobody answers on the socket."""
        try:
            answer = await request(self.socket, {"op": "status"}, timeout=CONTROL_TIMEOUT)
        except ControlError:
            return {}
        return dict(answer.get("status") or {})

    async def wait(self, pred: Callable[[Status], bool], what: str,
                   timeout: float = 30.0) -> Status:
        try:
            return await wait_polled(self.status, pred, timeout, what, step=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def describe(self) -> str:
        """Whether the process still runs, and the end of its log: for a failed wait."""
        code = self.proc.poll()
        head = f"daemon pid {self.proc.pid} " + ("running" if code is None else f"exited {code}")
        if self.log is None or not self.log.exists():
            return head + " (no log kept)"
        return head + ", its log ends:\n" + self.log.read_text(errors="replace")[-3000:]

    async def wait_state(self, *states: str, timeout: float = 30.0) -> Status:
        return await self.wait(lambda s: s.get("state") in states,
                               "state " + " or ".join(states), timeout)

    async def command(self, action: str, reason: str = "test") -> dict[str, Any]:
        return await request(self.socket, {"op": "command", "action": action,
                                           "reason": reason}, timeout=10)

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        """SIGTERM, and its exit code once it is gone (SIGKILL when it takes too long)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode


@contextlib.contextmanager
def daemon_process(config: Path, **kw: Any) -> Iterator[DaemonProcess]:
    """A DaemonProcess that is gone afterwards, whatever happened."""
    proc = DaemonProcess(config, **kw)
    try:
        yield proc
    finally:
        proc.terminate()
