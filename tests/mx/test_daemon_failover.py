"""A failover by the daemon ends with the mail queued on the backup MX delivered.

The daemon (in-process, dry-run router) talks to the real backup MX of tests/mx: an
OpenSSH sshd and a private Postfix whose transport points at the sink standing in for
our mail server behind the tunnel. Mail is queued while the sink is down (the tunnel is
down with the primary); then the failover verifies the MX and flushes its queue.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.lab.postfix import RETRY_DELAY
from daemon.model import Action, EventKind, MailPath, OperatorCommand, State
from tests.harness import BIN, daemon_config, finished, running_daemon, wait_daemon

from .conftest import MxWorld
from .test_flush import _queue_one_while_sink_down

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root, pytest.mark.slow]


async def test_failover_verifies_the_mx_and_the_flush_delivers_the_queued_mail(
        mx: MxWorld, tmp_path: Path) -> None:
    await _queue_one_while_sink_down(mx, "queued-during-outage")
    delivered_before = len(mx.sink.received)
    cfg = daemon_config(tmp_path, site="mxtest", backup_mx=mx.backup_mx_section())
    loop = asyncio.get_running_loop()
    async with running_daemon(cfg, ready=[State.PRIMARY], timeout=30) as daemon:
        started = loop.time()
        await daemon.submit(OperatorCommand(Action.FAILOVER, "primary cut", "pytest"))
        await mx.sink.wait_for(delivered_before + 1, timeout=30)
        delay = mx.sink.received[-1].at - started
        # the flush action reports after the delivery
        await wait_daemon(daemon, lambda d: d.ctx is not None and d.ctx.flushed,
                          "the flush to be reported", timeout=30)
    print(f"\nfailover command -> queued mail delivered: {delay:.2f} s "
          f"(Postfix's own retry: {RETRY_DELAY} s)")
    assert b"Subject: queued-during-outage" in mx.sink.received[-1].content
    assert delay < RETRY_DELAY / 10
    assert daemon.ctx is not None
    assert daemon.ctx.state == State.BACKUP
    assert daemon.ctx.mail_path == MailPath.OK
    reasons = [e.reason for e in daemon.audit.recent if e.kind == EventKind.ACTION]
    assert "backup MX verified" in reasons
    assert any(r.startswith("backup MX queue flushed (") for r in reasons), reasons


async def test_verify_from_the_cli_waits_for_the_checks_and_prints_them(
        mx: MxWorld, tmp_path: Path) -> None:
    cfg = daemon_config(tmp_path, site="mxtest", backup_mx=mx.backup_mx_section())
    async with running_daemon(cfg, ready=[State.PRIMARY], timeout=30):
        proc = await asyncio.create_subprocess_exec(
            str(BIN), "verify", "-c", str(cfg), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        code, out, err = await finished(proc, timeout=60)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("verify: verify by control uid=")
    assert any(line.startswith("mail_path") and " ok " in line for line in lines), out
    assert lines[-1] == "backup MX: ready (0 of 6 checks failed)"
