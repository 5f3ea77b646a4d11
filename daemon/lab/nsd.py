"""A private NSD authoritative server: the world's DNS in the `[dns]` tests and the lab.

`Nsd(zones)` writes each zone's text (origin -> zone file text) and an nsd.conf into a
temp dir (one loopback address, a free port for UDP and TCP, no chroot, no privilege
drop, no database, no remote control, its log in that dir), runs `/usr/sbin/nsd -d` in a
process group of its own and waits until it answers a UDP query for the first zone's
SOA. `stop()` ends the group (SIGTERM, then SIGKILL) and removes the dir, also after a
failed start.

    async with Nsd.started(zones={"example.net": ZONE}) as nsd:
        settings = DnsSettings(..., nameservers=(nsd.host,), port=nsd.port)

A server that never answers is a bound UDP socket that reads nothing: queries to it
wait until the resolver's timeout (`silent_udp_port()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Self

from .launcher import file_tail, free_port, running, start_in_session, stop_group, wait_started

NSD = "/usr/sbin/nsd"
# Bounds nsd's start-up, from exec to answering the first zone's SOA over UDP (it reads
# small zones in well under a second; a busy CI box gets the rest).
START_TIMEOUT = 10.0
# Bounds one readiness query (loopback: an answer comes at once or nsd is not up yet).
READY_QUERY_TIMEOUT = 0.2
# Bounds the wait for nsd to exit after SIGTERM before its group is killed.
STOP_TIMEOUT = 5.0
# How many kernel-picked TCP ports are tried before one is also free for UDP.
PORT_ATTEMPTS = 20

_ORIGIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")


def free_dns_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host` right now (nsd binds both)."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue   # taken for UDP: another one
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host} "
                       f"in {PORT_ATTEMPTS} attempts")


@contextlib.contextmanager
def silent_udp_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A UDP port on `host` bound for the block and never read: a DNS server that does
    not answer (queries are neither answered nor refused with an ICMP error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


class Nsd:
    """One nsd serving `zones` (origin -> zone file text) on `host`:`port`."""

    def __init__(self, zones: Mapping[str, str], *, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        if not zones:
            raise ValueError("nsd needs at least one zone")
        for origin in zones:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"not a zone origin: {origin!r}")
        self.zones = {o.rstrip(".").lower(): text for o, text in zones.items()}
        self.host = host
        self.port = port if port is not None else free_dns_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix="dslfailover-nsd-"))
        self.config = self.dir / "nsd.conf"
        self._log = self.dir / "nsd.log"
        self._proc: asyncio.subprocess.Process | None = None

    @classmethod
    def started(cls, zones: Mapping[str, str], **kwargs: Any
                ) -> AbstractAsyncContextManager[Self]:
        """An nsd running for the duration of an `async with` block."""
        return running(cls(zones, **kwargs))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _write_files(self) -> None:
        lines = [
            "server:",
            f"  ip-address: {self.host}",
            f"  port: {self.port}",
            # no privilege drop and no chroot: it runs as whoever started it, in place
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{self.dir}"',
            f'  pidfile: "{self.dir / "nsd.pid"}"',
            '  database: ""',
            f'  xfrdfile: "{self.dir / "xfrd.state"}"',
            f'  zonelistfile: "{self.dir / "zone.list"}"',
            f'  logfile: "{self._log}"',
            "  verbosity: 1",
            "  server-count: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for origin, text in self.zones.items():
            (self.dir / f"{origin}.zone").write_text(text)
            lines += ["zone:", f'  name: "{origin}"', f'  zonefile: "{origin}.zone"']
        self.config.write_text("\n".join(lines) + "\n")

    async def start(self) -> None:
        try:
            self._write_files()
            with self._log.open("ab") as log:
                # its own session: stop() ends the whole process group (xfrd, servers)
                self._proc = await start_in_session(
                    [NSD, "-d", "-c", str(self.config)], netns=None, stdout=log, stderr=log)
            await wait_started(self._proc, self._answers, name="nsd",
                               not_ready=f"nsd not answering on {self.host}:{self.port}",
                               timeout=START_TIMEOUT, log_tail=self.log_tail)
        except BaseException:
            await self.stop()
            raise

    async def _answers(self) -> bool:
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode

        query = dns.message.make_query(next(iter(self.zones)) + ".", "SOA")
        try:
            reply = await dns.asyncquery.udp(query, self.host, port=self.port,
                                             timeout=READY_QUERY_TIMEOUT)
        except (dns.exception.DNSException, OSError):
            return False   # not serving yet
        return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)

    def log_tail(self, size: int = 2000) -> str:
        return file_tail(self._log, size)

    async def stop(self) -> None:
        """Stop nsd's process group and remove the temp dir."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await stop_group(proc, grace=STOP_TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)


StartNsd = Callable[[Mapping[str, str]], Awaitable[Nsd]]


@contextlib.asynccontextmanager
async def nsd_servers() -> AsyncIterator[StartNsd]:
    """`start(zones)` as often as needed: every server started is stopped (its temp dir
    removed) when the block ends, after a failure too."""
    async with contextlib.AsyncExitStack() as stack:
        async def start(zones: Mapping[str, str]) -> Nsd:
            return await stack.enter_async_context(Nsd.started(zones))
        yield start
