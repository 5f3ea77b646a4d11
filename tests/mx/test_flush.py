"""Mail queued on the backup MX while our server was down arrives right after flush(),
not at Postfix's next retry (queue_run_delay = minimal_backoff_time = 300 s here)."""

from __future__ import annotations

import asyncio
import json
import smtplib

import pytest

from daemon.lab.postfix import RETRY_DELAY
from postfix_sync import BackupMx
from tests.harness import wait_polled

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]

# Bounds the wait for Postfix to try the sink once and defer the message.
DEFER_TIMEOUT = 15.0
# How long the test watches, with the sink back, that Postfix does not deliver by itself.
QUIET_PERIOD = 2.0


def _send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("alice@example.org", [f"bob@{DOMAIN}"],
                        f"Subject: {subject}\r\n\r\nqueued while down\r\n".encode())


async def _deferred(w: MxWorld) -> int:
    out = await w.postfix.run("postqueue", "-j")
    return sum(1 for line in out.splitlines() if json.loads(line)["queue_name"] == "deferred")


async def _queue_one_while_sink_down(w: MxWorld, subject: str) -> None:
    await w.sink.stop()
    await asyncio.to_thread(_send, w.postfix.port, subject)
    await wait_polled(lambda: _deferred(w), lambda n: n >= 1, DEFER_TIMEOUT,
                      "a deferred mail in the MX's queue", step=0.1)
    await w.sink.start()


@pytest.mark.slow
async def test_mail_deferred_while_the_sink_was_down_arrives_promptly_after_flush(
        mx: MxWorld) -> None:
    await _queue_one_while_sink_down(mx, "flush-me")
    count = len(mx.sink.received)
    await asyncio.sleep(QUIET_PERIOD)
    assert len(mx.sink.received) == count, "Postfix retried by itself: the test proves nothing"
    loop = asyncio.get_running_loop()
    async with BackupMx(mx.settings()) as bmx:
        start = loop.time()
        report = await bmx.flush()
        await mx.sink.wait_for(count + 1, timeout=30)
    delay = mx.sink.received[-1].at - start
    print(f"\nflush -> delivered in the sink: {delay:.3f} s "
          f"(Postfix's own retry: {RETRY_DELAY} s)")
    assert b"Subject: flush-me" in mx.sink.received[-1].content
    assert report.command.endswith(f"postqueue -c {mx.postfix.config_dir} -s {DOMAIN}")
    assert report.deferred_before == 1
    assert report.deferred_after == 0
    assert delay < 10.0


async def test_flush_falls_back_to_the_whole_queue_when_the_domain_is_not_eligible(
        mx: MxWorld) -> None:
    await mx.postfix.set_main({"fast_flush_domains": ""})
    try:
        await _queue_one_while_sink_down(mx, "not-eligible")
        count = len(mx.sink.received)
        async with BackupMx(mx.settings()) as bmx:
            report = await bmx.flush()
        await mx.sink.wait_for(count + 1, timeout=30)
    finally:
        await mx.postfix.set_main({"fast_flush_domains": "$relay_domains"})
    assert report.command.endswith("postqueue -c " + mx.postfix.config_dir + " -f")
    assert "postqueue -s refused" in report.detail
    assert report.deferred_before == 1
