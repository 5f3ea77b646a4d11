"""A private Postfix instance: the customer's backup MX in tests, the demo and the lab.

Its own config dir (main.cf, master.cf, `transport` and `relays` maps), queue and data
directories, log file and smtpd port; it never touches the system's /etc/postfix
instance. The master runs in the foreground (`postfix start-fg`) in its own session, so
stop() can always kill the whole process group and remove the directory.

Remote commands for this instance need `-c DIR`: pass `instance.config_dir` as
MxSettings.config_dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Self

from .launcher import (
    free_port,
    netns_argv,
    port_open,
    running,
    start_in_session,
    stop_group,
    wait_started,
)

POSTFIX = "/usr/sbin/postfix"
POSTMAP = "/usr/sbin/postmap"
POSTCONF = "/usr/sbin/postconf"
# Bounds start-up: from `postfix start-fg` to smtpd accepting connections.
START_TIMEOUT = 20.0
# Bounds `postfix stop` (and then the master's exit) before the group is killed.
STOP_TIMEOUT = 10.0
# Bounds one postmap/postconf/postfix command run by this launcher.
COMMAND_TIMEOUT = 20.0
# Postfix's own retry of deferred mail in this instance (queue_run_delay and
# minimal_backoff_time): long, so a test can tell a flush from a retry.
RETRY_DELAY = 300

# chroot is off everywhere: the instance lives in a temp dir, not under a jail.
_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


class PostfixInstance:
    """One private Postfix: configured, started, reloaded and stopped by this object."""

    def __init__(self, *, domain: str, nexthop: str, address: str = "127.0.0.1",
                 port: int | None = None, netns: str | None = None,
                 myhostname: str = "backup-mx.test") -> None:
        self.domain = domain
        self.nexthop = nexthop
        self.address = address
        self.port = port or free_port(address)
        self.netns = netns
        self.myhostname = myhostname
        self.dir = Path(tempfile.mkdtemp(prefix="dslfailover-postfix-"))
        self.config_dir = str(self.dir / "etc")
        self.transport = self.dir / "etc" / "transport"
        self.relays = self.dir / "etc" / "relays"
        self.maillog = self.dir / "log" / "maillog"
        self._proc: asyncio.subprocess.Process | None = None

    @classmethod
    def started(cls, **kwargs: Any) -> AbstractAsyncContextManager[Self]:
        """An instance running for the duration of an `async with` block."""
        return running(cls(**kwargs))

    def main_cf(self) -> dict[str, str]:
        etc = self.config_dir
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.dir / "queue"),
            "data_directory": str(self.dir / "data"),
            "myhostname": self.myhostname,
            "mydomain": "test",
            "mydestination": "",
            "inet_interfaces": self.address,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": f"hash:{etc}/relays",
            "transport_maps": f"hash:{etc}/transport",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": f"/var, /dev/stdout, {self.dir}",
            "queue_run_delay": f"{RETRY_DELAY}s",
            "minimal_backoff_time": f"{RETRY_DELAY}s",
            "maximal_backoff_time": "4000s",
            # a dead tunnel defers mail after 2 s instead of holding a delivery agent for
            # the default 30 s: the flush after a failover then has something to do
            "smtp_connect_timeout": "2s",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtputf8_enable": "no",
            # only loopback and namespace traffic: never ask DNS
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
        }

    def _write_config(self) -> None:
        self.dir.chmod(0o755)     # the postfix user must reach its queue below this dir
        etc = Path(self.config_dir)
        etc.mkdir()
        (self.dir / "log").mkdir()
        (self.dir / "queue").mkdir()
        data = self.dir / "data"
        data.mkdir()
        shutil.chown(data, "postfix", "postfix")
        lines = [f"{k} = {v}" for k, v in self.main_cf().items()]
        (etc / "main.cf").write_text("\n".join(lines) + "\n")
        (etc / "master.cf").write_text(_MASTER_CF.format(listen=f"{self.address}:{self.port}"))
        self.transport.write_text(f"{self.domain}  {self.nexthop}\n")
        self.relays.write_text(f"{self.domain}  OK\n")
        # Postfix commands wait until a just-written main.cf or map source is a second
        # old; these files are complete, so age them and start at once
        old = time.time() - 10
        for path in (etc / "main.cf", etc / "master.cf", self.transport, self.relays):
            os.utime(path, (old, old))

    async def run(self, *argv: str) -> str:
        """Run a Postfix command (postmap, postconf, postfix, ...) on this instance's
        config: `-c DIR` is added after the program name."""
        full = netns_argv(self.netns, [argv[0], "-c", self.config_dir, *argv[1:]])
        proc = await asyncio.create_subprocess_exec(
            *full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"{' '.join(full)}: no exit within {COMMAND_TIMEOUT:g}s") \
                from None
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(full)} exited {proc.returncode}: "
                               f"{(err or out).decode(errors='replace')[-500:]}")
        return out.decode(errors="replace")

    async def postmap(self, *paths: Path) -> None:
        for path in paths or (self.transport, self.relays):
            await self.run(POSTMAP, f"hash:{path}")

    async def set_main(self, params: Mapping[str, str]) -> None:
        """Change main.cf parameters (postconf -e) and reload."""
        await self.run(POSTCONF, "-e", *(f"{k}={v}" for k, v in params.items()))
        await self.reload()

    async def reload(self) -> None:
        await self.run(POSTFIX, "reload")

    async def start(self) -> None:
        try:
            self._write_config()
            await self.postmap()
            with (self.dir / "log" / "start.log").open("ab") as err:
                self._proc = await start_in_session(
                    [POSTFIX, "-c", self.config_dir, "start-fg"], netns=self.netns,
                    stdout=subprocess.DEVNULL, stderr=err)
            await wait_started(self._proc, self._listening, name="postfix",
                               not_ready="postfix not up", timeout=START_TIMEOUT,
                               log_tail=self.log_tail)
        except BaseException:
            await self.stop()
            raise

    async def _listening(self) -> bool:
        # inside a namespace this process cannot connect to its port: the master's pid
        # file is the sign that it runs
        if self.netns is None:
            return await port_open(self.address, self.port)
        return (self.dir / "queue" / "pid" / "master.pid").exists()

    def log_tail(self, size: int = 3000) -> str:
        text = ""
        for path in (self.dir / "log" / "start.log", self.maillog):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")[-size:]
        return text

    async def stop(self) -> None:
        """`postfix stop`, then kill whatever is left of the group; remove the dir."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await stop_group(proc, grace=STOP_TIMEOUT, ask=self._postfix_stop)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _postfix_stop(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await self.run(POSTFIX, "stop")
