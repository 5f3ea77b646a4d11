"""A command waiting for its end hears that the daemon stops, instead of a cut connection.

`dslfailover run` whose backup MX is a loopback port that accepts and never speaks, so
`verify`'s SSH handshake hangs; `dslfailover verify` waits for it; the daemon gets
SIGTERM. The CLI must say the daemon stopped before the verify ended, and exit 75.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BIN, daemon_config, daemon_process, finished, secret_file

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Bounds the CLI once the daemon is told to stop: its last answer comes at once.
ANSWER_TIMEOUT = 20.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections (the kernel's backlog) and never speaks."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_a_waiting_verify_is_told_the_daemon_stops(
        tmp_path: Path, silent_port: int) -> None:
    key = secret_file(tmp_path / "id_ed25519", "not a key: the handshake never gets there")
    known = secret_file(tmp_path / "known_hosts", "# nothing")
    config = daemon_config(tmp_path, backup_mx={
        "host": "127.0.0.1", "port": silent_port, "user": "mx", "key_file": str(key),
        "known_hosts": str(known), "domain": "example.net",
        "nexthop": "smtp:[127.0.0.1]:25", "connect_timeout": 60.0})
    with daemon_process(config, log=tmp_path / "daemon.log") as daemon:
        await daemon.wait_state("primary")
        cli = await asyncio.create_subprocess_exec(
            str(BIN), "verify", "--timeout", "120", "-c", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await daemon.wait(lambda s: s.get("mx_action") == "verify", "the verify running")
        daemon.proc.send_signal(signal.SIGTERM)
        code, out, err = await finished(cli, ANSWER_TIMEOUT)
    assert out.startswith("verify: verify by control uid=")   # it was accepted
    assert code == 75, err
    assert "verify not finished: the daemon is stopping before it ended" in err
