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


async def test_slow_banner_times_out_at_banner(peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    port = await peer(slow)
    result = await smtp_probe("127.0.0.1", port, timeout=0.3, ehlo_name=EHLO)
    assert (result.ok, result.step) == (False, "banner")
    assert "no answer within 0.3s" in result.detail


async def test_5xx_banner_is_reported_with_the_line(
        peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.3.2 not today\r\n")
        await writer.drain()
        writer.close()

    port = await peer(busy)
    result = await smtp_probe("127.0.0.1", port, timeout=1.0, ehlo_name=EHLO)
    assert (result.ok, result.step, result.detail) == (False, "banner", "554 5.3.2 not today")


async def test_ehlo_refused(peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def picky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi\r\n")
        await reader.readline()
        writer.write(b"550 who are you\r\n")
        await writer.drain()
        writer.close()

    port = await peer(picky)
    result = await smtp_probe("127.0.0.1", port, timeout=1.0, ehlo_name=EHLO)
    assert (result.ok, result.step) == (False, "ehlo")
    assert "550" in result.detail


async def test_garbage_is_reported_not_raised(peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def noise(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\xff\xfeSSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    port = await peer(noise)
    result = await smtp_probe("127.0.0.1", port, timeout=1.0, ehlo_name=EHLO)
    assert (result.ok, result.step) == (False, "banner")
    assert "not an SMTP reply" in result.detail


async def test_endless_line_is_garbage(peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220" + b"x" * 10000)
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    port = await peer(flood)
    result = await smtp_probe("127.0.0.1", port, timeout=1.0, ehlo_name=EHLO)
    assert not result.ok
    assert result.step == "banner"


async def test_multiline_ehlo_is_read_to_the_end(
        peer: Callable[[Handler], Awaitable[int]]) -> None:
    async def good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        await reader.readline()
        writer.write(b"221 bye\r\n")
        await writer.drain()
        writer.close()

    port = await peer(good)
    result = await smtp_probe("127.0.0.1", port, timeout=1.0, ehlo_name=EHLO)
    assert result.ok
    assert result.detail == "250 8BITMIME"
