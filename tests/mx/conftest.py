"""Real peers for the backup MX tests, started once per session: an OpenSSH sshd on a
loopback port, a private Postfix instance whose transport points at an aiosmtpd sink on
loopback (standing in for the tunnel address), and the sink itself.

Each test starts from correct maps (the `mx` fixture resets them) and may rewrite them.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from daemon.lab.postfix import POSTMAP, PostfixInstance
from daemon.lab.sink import SmtpSink
from daemon.lab.sshd import Sshd
from postfix_sync import MxSettings

DOMAIN = "unixwiz.net"


@dataclass
class MxWorld:
    sink: SmtpSink
    sshd: Sshd
    postfix: PostfixInstance

    @property
    def nexthop(self) -> str:
        return f"smtp:[127.0.0.1]:{self.sink.port}"

    def fields(self, **changes: object) -> dict[str, object]:
        """This world's MX settings by name, with `changes` (MxSettings and the daemon
        config's `[backup_mx]` table use the same names)."""
        base: dict[str, object] = dict(
            host="127.0.0.1", port=self.sshd.port, user=self.sshd.user,
            key_file=self.sshd.client_key, known_hosts=self.sshd.known_hosts,
            domain=DOMAIN, nexthop=self.nexthop, config_dir=self.postfix.config_dir,
            connect_timeout=5.0, command_timeout=10.0, smtp_timeout=3.0)
        return {**base, **changes}

    def settings(self, **changes: object) -> MxSettings:
        return MxSettings(**self.fields(**changes))  # type: ignore[arg-type]

    def backup_mx_section(self, **changes: object) -> dict[str, object]:
        """The daemon config's `[backup_mx]` table for this world, as harness sections."""
        return {k: str(v) if isinstance(v, Path) else v
                for k, v in self.fields(**changes).items() if v is not None}

    async def write_map(self, path: Path, text: str | bytes, *, build: bool = True) -> None:
        """Write a map source; with build, postmap it (as an admin would)."""
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        now = time.time()
        if build:
            # postmap waits until a source is a second old; this one is complete: age it
            os.utime(path, (now - 10, now - 10))
            await self.postfix.run(POSTMAP, f"hash:{path}")
        else:
            # the last postmap ran before this edit (mtimes have whole-second resolution
            # over SFTP, so make "before" visible)
            db = path.with_name(path.name + ".db")
            os.utime(db, (now - 5, now - 5))

    async def transport(self, text: str | bytes, *, build: bool = True) -> None:
        await self.write_map(self.postfix.transport, text, build=build)

    async def relays(self, text: str, *, build: bool = True) -> None:
        await self.write_map(self.postfix.relays, text, build=build)

    def entry(self, nexthop: str | None = None) -> str:
        return f"{DOMAIN}  {nexthop or self.nexthop}\n"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mx_world() -> AsyncIterator[MxWorld]:
    if os.geteuid() != 0:
        pytest.skip("needs root: sshd and a private Postfix instance")
    async with SmtpSink.started() as sink, Sshd.started() as sshd, PostfixInstance.started(
            domain=DOMAIN, nexthop=f"smtp:[127.0.0.1]:{sink.port}") as postfix:
        yield MxWorld(sink, sshd, postfix)


@pytest_asyncio.fixture(loop_scope="session")
async def mx(mx_world: MxWorld) -> AsyncIterator[MxWorld]:
    """The world with correct maps, relaying by the `relays` map, the sink up."""
    w = mx_world
    await w.transport(f"# test transport\nexample.org  smtp:[127.0.0.2]\n{w.entry()}")
    await w.relays(f"example.org OK\n{DOMAIN} OK\n")
    w.sink.refuse = False
    await w.sink.start()
    try:
        yield w
    finally:
        relay = (await w.postfix.run("postconf", "-h", "relay_domains")).strip()
        wanted = w.postfix.main_cf()["relay_domains"]
        if relay != wanted:
            await w.postfix.set_main({"relay_domains": wanted})
