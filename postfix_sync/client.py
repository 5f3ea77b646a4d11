"""BackupMx: the one object the daemon and the CLI use to talk to the backup MX.

    async with BackupMx(settings) as mx:
        report = await mx.verify()        # the six checks of DESIGN §6, in order
        if not report.ok and repair_allowed:
            await mx.repair()
        await mx.flush()

One SSH connection is reused for everything and reopened when it dropped. A check that
fails on the MX is a failed Check with a detail; not reaching the MX at all raises
MxConnectError (the caller's "cannot verify").
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import asyncssh

from .checks import MAP_CHECKS, map_checks
from .errors import MxConnectError, MxError, MxMapError
from .mailpath import smtp_greeting
from .nexthop import NexthopError, probe_target
from .queue import deferred_for
from .remote import Remote
from .repair import run_repair
from .ssh import SshLink
from .types import Check, FlushReport, MxSettings, RepairReport, VerifyReport

# How long flush() watches the deferred count fall after `postqueue` returned: the flush
# server moves the files from deferred to incoming right away, qmgr does the rest.
FLUSH_SETTLE = 3.0
# Poll interval while watching it.
FLUSH_POLL = 0.2
# The EHLO name of the mail_path probe (settings.extra["helo"] overrides it).
PROBE_HELO = "dslfailover-probe.invalid"


class BackupMx:
    """Async context manager; one SSH connection reused; reconnects if it dropped."""

    def __init__(self, settings: MxSettings) -> None:
        try:
            self._target = probe_target(settings.nexthop)
        except NexthopError as exc:
            raise MxMapError("settings", f"nexthop: {exc}") from None
        self._s = settings
        self._link = SshLink(settings)
        self._remote = Remote(self._link, settings)

    async def __aenter__(self) -> BackupMx:
        await self._link.connection()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._link.close()

    async def verify(self) -> VerifyReport:
        """All six checks of DESIGN §6, in that order, including mail_path."""
        try:
            facts = await self._remote.facts()
            found = map_checks(self._s.domain, self._s.nexthop, facts)
        except MxConnectError:
            raise
        except MxError as exc:   # postconf failed or printed nonsense: every map check fails
            found = [Check(name, False, f"cannot read the Postfix config: {exc}")
                     for name in MAP_CHECKS]
        return VerifyReport((*found, await self.mail_path()))

    async def mail_path(self) -> Check:
        """From the MX's side: 220 banner and 250 to EHLO from the nexthop's host:port."""
        host, port = self._target
        target = f"{host}:{port} via {self._s.host}"
        conn = await self._link.connection()
        try:
            # bounds the direct-tcpip open: the MX's own TCP connect to the nexthop
            async with asyncio.timeout(self._s.smtp_timeout):
                reader, writer = await conn.open_connection(host, port)
        except TimeoutError:
            return Check("mail_path", False, f"{target}: connect: no connection within "
                         f"{self._s.smtp_timeout:g}s")
        except asyncssh.ChannelOpenError as exc:
            return Check("mail_path", False, f"{target}: connect: the MX could not open "
                         f"the connection: {exc.reason}")
        except (OSError, asyncssh.Error) as exc:
            raise MxConnectError("mail_path", f"{self._link.where}: {exc}") from None
        try:
            return await smtp_greeting(reader, writer, target=target,
                                       helo=self._s.extra.get("helo", PROBE_HELO),
                                       timeout=self._s.smtp_timeout)
        finally:
            writer.close()

    async def repair(self, *, dry_run: bool = False) -> RepairReport:
        """Opt-in: make the domain's map entries right, rebuild, reload, verify again."""
        return await run_repair(self._remote, verify=self.verify, dry_run=dry_run)

    async def _deferred(self) -> int:
        res = await self._link.run(self._remote.postfix_cmd(self._s.postqueue, "-j"),
                                   "postqueue -j")
        return deferred_for(res.stdout, self._s.domain)

    async def flush(self) -> FlushReport:
        """`postqueue -s <domain>` (fast flush), else `postqueue -f`; deferred counts."""
        before = await self._deferred()
        site = self._remote.postfix_cmd(self._s.postqueue, "-s", self._s.domain)
        res = await self._link.run(site, "postqueue -s", check=False)
        detail = ""
        command = res.command
        if res.exit_status != 0:
            # not eligible for fast flush (fast_flush_domains), or no flush service
            why = (res.stderr or res.stdout).strip()[-200:]
            everything = self._remote.postfix_cmd(self._s.postqueue, "-f")
            res = await self._link.run(everything, "postqueue -f")
            command = res.command
            detail = f"postqueue -s refused ({why}); flushed the whole queue"
        after = await self._deferred()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_SETTLE
        while after and loop.time() < deadline:
            await asyncio.sleep(FLUSH_POLL)
            after = await self._deferred()
        return FlushReport(command, before, after, detail)

