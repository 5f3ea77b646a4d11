"""`python -m router_drivers.emulator` as its own process, as the demo and the lab run it.

In a namespace with `--apply-iface` a save really changes the namespace's WAN address and
default route and runs the `--apply-command` hook; the initial config is read from the
interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from router_drivers import create_driver, iproute
from tests.harness import free_port

from .conftest import BACKUP, PASSWORD, PRIMARY, telnet_settings
from .test_cli_router import write_config

# Bounds the emulator process coming up (interpreter start-up and imports).
START_TIMEOUT = 20.0


def _wait_started(proc: subprocess.Popen[bytes]) -> None:
    """Read its output until it says "... console on HOST:PORT" or START_TIMEOUT passes."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"console on" not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise RuntimeError(f"emulator did not start in {START_TIMEOUT}s: {seen!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"emulator exited: {seen!r}")
            seen += chunk


@contextlib.contextmanager
def emulator_process(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start the emulator, wait until it listens, always kill its process group."""
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        _wait_started(proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_emulator_module_serves_a_console_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    argv = [sys.executable, "-m", "router_drivers.emulator", "--console", "cli", "--host",
            "127.0.0.1", "--port", str(port), "--password-file", str(tmp_path / "pw"),
            "--initial", f"{BACKUP.address},{BACKUP.netmask},{BACKUP.gateway}"]
    with emulator_process(argv):
        driver = create_driver("netopia-cli", telnet_settings("127.0.0.1", port))
        assert asyncio.run(driver.apply_wan(PRIMARY)) == PRIMARY


@pytest.mark.root
def test_emulator_in_a_namespace_really_moves_the_wan_and_runs_the_hook(
        router_netns: str, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    hook_out = tmp_path / "hook"
    hook = f"sh -c 'echo {{address}} {{prefixlen}} {{gateway}} > {hook_out}'"
    argv = ["ip", "netns", "exec", router_netns, sys.executable, "-m",
            "router_drivers.emulator", "--console", "menu", "--host", "127.0.0.1", "--port",
            str(port), "--password-file", str(tmp_path / "pw"), "--apply-iface", "wan0",
            "--apply-command", hook]
    config = write_config(tmp_path, "netopia-menu", port)
    in_ns = ["ip", "netns", "exec", router_netns, sys.executable, "-m", "daemon.cli", "router"]
    with emulator_process(argv):
        # the initial config was read from wan0 in the namespace
        show = subprocess.run([*in_ns, "show", "-c", str(config)], capture_output=True,
                              text=True, timeout=60)
        assert "circuit: primary" in show.stdout, show.stderr
        apply = subprocess.run([*in_ns, "apply", "backup", "-c", str(config)],
                               capture_output=True, text=True, timeout=60)
        assert apply.returncode == 0, apply.stderr
    assert asyncio.run(iproute.read_wan("wan0", router_netns)) == BACKUP
    assert hook_out.read_text().split() == ["10.92.0.10", "29", "10.92.0.9"]
