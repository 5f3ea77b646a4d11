"""BackupMx against real peers: host keys, connection reuse, the mail-path dialogue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from postfix_sync import BackupMx, MxAuthError, MxConnectError, MxHostKeyError

from .conftest import MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


async def test_unknown_host_key_is_refused_with_host_key_error(
        mx: MxWorld, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(MxHostKeyError, match="host key not accepted"):
        async with BackupMx(mx.settings(known_hosts=empty)):
            pass


async def test_changed_host_key_is_refused_with_host_key_error(
        mx: MxWorld, tmp_path: Path) -> None:
    changed = tmp_path / "known_hosts"
    changed.write_text(mx.sshd.other_host_key_line())
    with pytest.raises(MxHostKeyError, match="unknown or changed"):
        async with BackupMx(mx.settings(known_hosts=changed)) as bmx:
            await bmx.verify()


async def test_missing_known_hosts_file_is_never_trust_on_first_use(
        mx: MxWorld, tmp_path: Path) -> None:
    with pytest.raises(MxHostKeyError, match="never accepted on first use"):
        async with BackupMx(mx.settings(known_hosts=tmp_path / "nope")):
            pass


async def test_key_not_authorized_is_auth_error(mx: MxWorld, tmp_path: Path) -> None:
    import asyncssh

    other = tmp_path / "id_other"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    with pytest.raises(MxAuthError, match="refused"):
        async with BackupMx(mx.settings(key_file=other)):
            pass


async def test_sshd_down_is_connect_error(mx: MxWorld) -> None:
    await mx.sshd.pause()
    try:
        with pytest.raises(MxConnectError, match="Connection refused"):
            async with BackupMx(mx.settings()):
                pass
    finally:
        await mx.sshd.start_again()


async def test_one_ssh_connection_serves_verify_and_flush(mx: MxWorld) -> None:
    before = mx.sshd.log_tail(10**6).count("Accepted publickey")
    async with BackupMx(mx.settings()) as bmx:
        assert (await bmx.verify()).ok
        assert (await bmx.mail_path()).ok
        await bmx.flush()
        assert (await bmx.verify()).ok
    assert mx.sshd.log_tail(10**6).count("Accepted publickey") == before + 1


async def test_verify_returns_the_six_checks_in_contract_order(mx: MxWorld) -> None:
    from postfix_sync import CHECK_NAMES

    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.verify()
    assert tuple(c.name for c in report.checks) == CHECK_NAMES


@pytest_asyncio.fixture(loop_scope="session")
async def fake_smtp() -> AsyncIterator[tuple[list[bytes], asyncio.Server]]:
    """A loopback TCP server whose replies each test sets: for mail-path failures that a
    real SMTP server would not produce on demand."""
    replies: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            if reply == b"<hang>":
                await reader.read()   # say nothing until the client gives up
                break
            writer.write(reply)
            await writer.drain()
            if not await reader.readline():
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield replies, server
    finally:
        server.close()
        await server.wait_closed()


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.mark.parametrize(("replies", "why"), [
    ([b"554 5.3.2 go away\r\n"], "banner: expected 220, got '554 5.3.2 go away'"),
    ([b"220-fake\r\n220 ready\r\n", b"502 no EHLO here\r\n"],
     "EHLO: expected 250, got '502 no EHLO here'"),
], ids=["banner", "ehlo"])
async def test_mail_path_names_the_step_that_failed_and_what_was_seen(
        mx: MxWorld, fake_smtp: tuple[list[bytes], asyncio.Server], replies: list[bytes],
        why: str) -> None:
    script, server = fake_smtp
    script += replies
    async with BackupMx(mx.settings(nexthop=f"smtp:[127.0.0.1]:{_port(server)}")) as bmx:
        check = await bmx.mail_path()
    assert not check.ok
    assert why in check.detail


async def test_mail_path_times_out_on_a_silent_server_within_smtp_timeout(
        mx: MxWorld, fake_smtp: tuple[list[bytes], asyncio.Server]) -> None:
    replies, server = fake_smtp
    replies.append(b"<hang>")
    settings = mx.settings(nexthop=f"smtp:[127.0.0.1]:{_port(server)}", smtp_timeout=0.5)
    async with BackupMx(settings) as bmx:
        loop = asyncio.get_running_loop()
        start = loop.time()
        check = await bmx.mail_path()
        took = loop.time() - start
    assert not check.ok
    assert "banner: no complete reply within 0.5s; nothing seen" in check.detail
    assert took < 2.0


async def test_postfix_config_that_cannot_be_read_fails_the_map_checks_with_the_reason(
        mx: MxWorld) -> None:
    async with BackupMx(mx.settings(config_dir="/nonexistent/postfix")) as bmx:
        report = await bmx.verify()
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["transport_source", "transport_compiled",
                                        "relay_source", "relay_compiled", "maps_fresh"]
    assert all("cannot read the Postfix config: postconf:" in c.detail for c in failed)
    assert "/nonexistent/postfix" in failed[0].detail


def _session_children(sshd_pid: int) -> list[int]:
    """The per-connection sshd processes forked by our sshd (never anyone else's)."""
    path = Path(f"/proc/{sshd_pid}/task/{sshd_pid}/children")
    return [int(p) for p in path.read_text().split()]


async def test_reconnects_after_the_connection_was_dropped(mx: MxWorld) -> None:
    import os
    import signal

    assert mx.sshd.pid is not None
    before = mx.sshd.log_tail(10**6).count("Accepted publickey")
    async with BackupMx(mx.settings()) as bmx:
        assert (await bmx.verify()).ok
        for pid in _session_children(mx.sshd.pid):
            os.kill(pid, signal.SIGTERM)
        await asyncio.sleep(0.3)   # let the client see the connection close
        assert (await bmx.verify()).ok
    assert mx.sshd.log_tail(10**6).count("Accepted publickey") == before + 2
