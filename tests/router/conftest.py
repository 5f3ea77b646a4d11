"""Fixtures for the router driver tests: emulators, a private sshd (daemon.lab's), a
router namespace.

Everything listens on loopback or lives in a network namespace created here, and is torn
down in `finally` blocks (process groups killed, namespaces deleted, temp dirs removed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import pytest

from daemon.lab.sshd import SSHD, Sshd
from router_drivers import RouterDriver, RouterSettings, Secret, WanConfig, create_driver
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.harness import BACKUP as BACKUP  # the router tests import the WANs from here
from tests.harness import PRIMARY as PRIMARY
from tests.harness import in_own_loop

PASSWORD = "pw-S3cret-42"  # distinctive, so a leak is found by a plain search


def telnet_settings(host: str, port: int, **kw: Any) -> RouterSettings:
    """Settings with short timeouts: loopback answers in milliseconds."""
    base: dict[str, Any] = {"host": host, "port": port, "password": Secret(PASSWORD),
                            "connect_timeout": 2.0, "step_timeout": 1.5,
                            "restart_timeout": 10.0}
    return RouterSettings(**{**base, **kw})


EmulatorFactory = Callable[..., Awaitable[tuple[str, int, RouterState]]]


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorFactory]:
    """start(console, initial=PRIMARY, **EmulatorOptions fields) -> (host, port, state)."""
    async with contextlib.AsyncExitStack() as stack:
        async def start(console: str, initial: WanConfig = PRIMARY,
                        **options: Any) -> tuple[str, int, RouterState]:
            options.setdefault("password", PASSWORD)
            return await stack.enter_async_context(
                run_emulator(console, initial, options=EmulatorOptions(**options)))  # type: ignore[arg-type]
        yield start


# The driver of each emulated console.
DRIVERS = {"menu": "netopia-menu", "cli": "netopia-cli"}
DriverFactory = Callable[..., Awaitable[tuple[RouterDriver, RouterState]]]


@pytest.fixture
def console_driver(emulator: EmulatorFactory) -> DriverFactory:
    """connect(console, settings=None, **EmulatorOptions fields) -> (driver, state): an
    emulator of that console and its driver, with telnet_settings(**settings)."""
    async def connect(console: str, settings: Mapping[str, Any] | None = None,
                      **options: Any) -> tuple[RouterDriver, RouterState]:
        host, port, state = await emulator(console, **options)
        driver = create_driver(DRIVERS[console], telnet_settings(host, port, **(settings or {})))
        return driver, state
    return connect


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture
def router_netns() -> Iterator[str]:
    """A network namespace with a WAN interface `wan0` set to PRIMARY.

    `wan0` is one end of a veth pair whose peer stays in the namespace (this kernel has
    no dummy module); nothing is ever sent over it.
    """
    name = f"dslf-rt-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "-n", name, "link", "set", "lo", "up")
        _run("ip", "-n", name, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p")
        _run("ip", "-n", name, "link", "set", "wan0p", "up")
        _run("ip", "-n", name, "link", "set", "wan0", "up")
        _run("ip", "-n", name, "addr", "add", f"{PRIMARY.address}/{PRIMARY.prefixlen}",
             "dev", "wan0")
        _run("ip", "-n", name, "route", "add", "default", "via", str(PRIMARY.gateway),
             "dev", "wan0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """daemon.lab's private OpenSSH sshd on a loopback port: own host key, one authorized
    client key, a known_hosts for it; stopped and removed after the module."""
    if shutil.which(SSHD) is None:
        pytest.skip("openssh-server is not installed")
    if os.geteuid() != 0:
        pytest.skip("sshd needs /run/sshd, which only root can create")
    with in_own_loop(Sshd.started) as server:   # set up inside async fixtures too
        yield server
