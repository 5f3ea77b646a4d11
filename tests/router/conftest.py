"""Fixtures for the router driver tests: emulators, a private sshd, a router namespace.

Everything listens on loopback or lives in a network namespace created here, and is torn
down in `finally` blocks (process groups killed, namespaces deleted, temp dirs removed).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from router_drivers import RouterSettings, Secret, WanConfig
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.harness import free_port

PRIMARY = WanConfig.parse("10.91.0.2", "255.255.255.248", "10.91.0.1")
BACKUP = WanConfig.parse("10.92.0.10", "255.255.255.248", "10.92.0.9")
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


@dataclass(frozen=True)
class Sshd:
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    other_known_hosts: Path  # a known_hosts naming a different key for the same host


def _keygen(path: Path) -> str:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
    return path.with_suffix(".pub").read_text().split()[:2][1]


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {host}:{port} in {timeout}s")


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """A private OpenSSH sshd on a loopback port: own host key, one authorized key."""
    if shutil.which("/usr/sbin/sshd") is None:
        pytest.skip("openssh-server is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="dslf-sshd-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privsep dir
        except PermissionError:
            pytest.skip("sshd needs /run/sshd, which only root can create")
        port = free_port()
        host_pub = _keygen(tmp / "host_key")
        other_pub = _keygen(tmp / "other_host_key")
        _keygen(tmp / "client_key")
        (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
        (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} ssh-ed25519 {host_pub}\n")
        (tmp / "other_known_hosts").write_text(f"[127.0.0.1]:{port} ssh-ed25519 {other_pub}\n")
        (tmp / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
            f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nPidFile none\n"
            "LogLevel ERROR\nUseDNS no\n")
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                                start_new_session=True, stderr=subprocess.DEVNULL)
        _wait_port("127.0.0.1", port, proc, 10.0)
        user = pwd.getpwuid(os.geteuid()).pw_name
        yield Sshd("127.0.0.1", port, user, tmp / "client_key", tmp / "known_hosts",
                   tmp / "other_known_hosts")
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
