"""A private OpenSSH sshd: the "remote host" of the backup MX in tests, the demo and the lab.

Its own host key, one authorized client key (both made here with asyncssh), a
known_hosts file for clients, on a loopback port (or inside a network namespace). It
runs as the current user (root in CI), so remote commands run with that user's rights.

    async with Sshd.started() as sshd:
        settings = MxSettings(host="127.0.0.1", port=sshd.port, key_file=sshd.client_key,
                              known_hosts=sshd.known_hosts, user=sshd.user, ...)
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Self

import asyncssh

from .launcher import (
    file_tail,
    free_port,
    port_open,
    running,
    start_in_session,
    stop_group,
    wait_started,
)

SSHD = "/usr/sbin/sshd"
# Bounds sshd's start-up, from exec to accepting TCP connections on its port.
START_TIMEOUT = 10.0
# Bounds the wait for sshd to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0


class Sshd:
    """One private sshd with its own keys; pause() and start_again() keep them."""

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 netns: str | None = None, user: str | None = None) -> None:
        self.host = host
        if port is None:
            # inside a namespace nothing else listens, and loopback ports cannot be probed
            port = 22 if netns else free_port(host)
        self.port = port
        self.netns = netns
        self.user = user or getpass.getuser()
        self.dir = Path(tempfile.mkdtemp(prefix="dslfailover-sshd-"))
        self.client_key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.config = self.dir / "sshd_config"
        self._proc: asyncio.subprocess.Process | None = None
        self._log = self.dir / "sshd.log"

    @classmethod
    def started(cls, **kwargs: Any) -> AbstractAsyncContextManager[Self]:
        """An sshd running for the duration of an `async with` block."""
        return running(cls(**kwargs))

    def _write_files(self) -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(str(self.host_key))
        self.host_key.chmod(0o600)
        client = asyncssh.generate_private_key("ssh-ed25519")
        client.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        pub = client.export_public_key().decode().strip()
        (self.dir / "authorized_keys").write_text(pub + "\n")
        host_pub = host_key.export_public_key().decode().split()
        self.known_hosts.write_text(f"{self.host_pattern} {host_pub[0]} {host_pub[1]}\n")
        self.config.write_text("\n".join([
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            # keys live in a temp dir whose modes sshd would otherwise reject
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            # the mail_path probe is direct-tcpip through this sshd
            "AllowTcpForwarding yes",
            f"AllowUsers {self.user}",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]))

    @property
    def pid(self) -> int | None:
        """The listening sshd's process id (its session children are the connections)."""
        return self._proc.pid if self._proc is not None else None

    def other_host_key_line(self) -> str:
        """A known_hosts line for this host:port with a different key (a "changed" key)."""
        key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        kind, b64 = key.split()[:2]
        return f"{self.host_pattern} {kind} {b64}\n"

    @property
    def host_pattern(self) -> str:
        """How known_hosts names this server: `[host]:port`, or plain `host` on port 22
        (OpenSSH and asyncssh look the default port up without brackets)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    async def start(self) -> None:
        try:
            self._write_files()
            await self._spawn()
        except BaseException:
            await self.stop()
            raise

    async def _spawn(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)   # privilege separation dir sshd insists on
        with self._log.open("ab") as log:
            # its own session: stop() kills the whole process group
            self._proc = await start_in_session(
                [SSHD, "-D", "-e", "-f", str(self.config)], netns=self.netns,
                stdout=log, stderr=log)
        await wait_started(self._proc, self._listening, name="sshd",
                           not_ready=f"sshd not listening on {self.host}:{self.port}",
                           timeout=START_TIMEOUT, log_tail=self.log_tail)

    async def _listening(self) -> bool:
        # inside a namespace this process cannot connect to its port: sshd logs it
        if self.netns is None:
            return await port_open(self.host, self.port)
        return "Server listening" in self.log_tail()

    def log_tail(self, size: int = 2000) -> str:
        return file_tail(self._log, size)

    async def stop(self) -> None:
        """Kill sshd's process group (its session children too) and remove the temp dir."""
        await self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await stop_group(proc, grace=STOP_TIMEOUT)

    async def pause(self) -> None:
        """Stop sshd but keep its keys and files, so that start_again() brings back the
        same host key (the "sshd down" case)."""
        await self._kill()

    async def start_again(self) -> None:
        await self._spawn()
