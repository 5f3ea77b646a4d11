"""The SMTP probe against a real aiosmtpd server and against misbehaving peers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiosmtpd.controller import Controller

from daemon.probes.smtp import smtp_probe
from tests.harness import free_port

EHLO = "probe-test.invalid"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


def test_real_smtp_server_passes() -> None:
    port = free_port()
    controller = Controller(object(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = asyncio.run(smtp_probe("127.0.0.1", port, timeout=2.0, ehlo_name=EHLO))
    finally:
        controller.stop()
    assert result.ok, result
    assert result.step == "done"
    assert result.rtt_ms is not None


async def test_refused_connection_fails_at_connect() -> None:
    result = await smtp_probe("127.0.0.1", free_port(), timeout=1.0, ehlo_name=EHLO)
    assert not result.ok
    assert result.step == "connect"
    assert "ConnectionRefused" in result.detail


def scripted(*steps: bytes | float | None) -> Handler:
    """A peer that plays `steps` and hangs up: bytes are sent, a float is a pause of that
    many seconds, None reads one line (the probe's command)."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for step in steps:
            if step is None:
                await reader.readline()
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                writer.write(step)
                await writer.drain()
        writer.close()
    return handler


# (peer, probe timeout, ok, step it ends at, text in its detail)
PEERS = {
    "slow banner times out at banner": (scripted(5.0), 0.3, False, "banner",
                                        "no answer within 0.3s"),
    "5xx banner is reported with the line": (scripted(b"554 5.3.2 not today\r\n"), 1.0,
                                             False, "banner", "554 5.3.2 not today"),
    "ehlo refused": (scripted(b"220 hi\r\n", None, b"550 who are you\r\n"), 1.0, False,
                     "ehlo", "550"),
    "garbage is reported not raised": (scripted(b"\x00\xff\xfeSSH-2.0-OpenSSH_9.2\r\n"),
                                       1.0, False, "banner", "not an SMTP reply"),
    "endless line is garbage": (scripted(b"220" + b"x" * 10000, 1.0), 1.0, False, "banner",
                                ""),
    "multiline ehlo is read to the end": (scripted(
        b"220 mx ESMTP\r\n", None, b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n", None,
        b"221 bye\r\n"), 1.0, True, "done", ""),
}


@pytest.mark.parametrize("case", PEERS)
async def test_a_peer_gives_the_verdict(peer: Callable[[Handler], Awaitable[int]],
                                        case: str) -> None:
    handler, timeout, ok, step, detail = PEERS[case]
    port = await peer(handler)
    result = await smtp_probe("127.0.0.1", port, timeout=timeout, ehlo_name=EHLO)
    assert (result.ok, result.step) == (ok, step), result
    assert detail in result.detail
