"""kill -9 of the daemon while it repairs the backup MX's maps, for real.

The daemon (a subprocess, Netopia CLI emulator as the router, the real sshd + private
Postfix of tests/mx) fails over, finds the transport entry wrong, and starts a repair; it
is killed in the middle. The map source is then either the old file or the repaired one,
never half-written; after a restart the interrupted repair is reported, the MX is
verified again and, repair being allowed, fixed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.control import ControlError, request
from postfix_sync.maps import parse_map
from router_drivers.emulator import EmulatorOptions, run_emulator
from tests.siteconf import PRIMARY, wan_tables

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root, pytest.mark.slow]

BIN = Path(sys.executable).parent / "dslfailover"


def config(tmp: Path, w: MxWorld, router_port: int) -> Path:
    (tmp / "router.password").write_text("repair-pw\n")
    path = tmp / "dslfailover.toml"
    path.write_text(f"""
site = "repaircrash"
state_dir = "{tmp / 'state'}"
[primary]
targets = ["127.0.0.1"]
[router]
driver = "netopia-cli"
host = "127.0.0.1"
port = {router_port}
password_file = "router.password"
{wan_tables()}
{w.backup_mx_table()}repair = true
smtp_timeout = 3.0
[mqtt]
enabled = false
[control]
socket = "{tmp / 'control.sock'}"
""")
    return path


def start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(BIN), "run", "-c", str(cfg), "--log-format", "json"],
                                stdout=out, stderr=out, start_new_session=True)


async def status(sock: Path, pred: Any, timeout: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            try:
                answer = await request(sock, {"op": "status"}, timeout=5)
                if pred(answer["status"]):
                    return dict(answer["status"])
            except ControlError:
                pass
            await asyncio.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def test_kill_during_a_repair_leaves_the_map_whole_and_the_restart_finishes_it(
        mx: MxWorld, tmp_path: Path) -> None:
    wrong = f"# transport\nexample.org  smtp:[127.0.0.2]\n{DOMAIN}  smtp:[127.0.0.9]:25\n"
    await mx.transport(wrong)
    log = tmp_path / "daemon.log"
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password="repair-pw")
                            ) as (_, port, _router):
        cfg = config(tmp_path, mx, port)
        sock = tmp_path / "control.sock"
        first = start(cfg, log)
        try:
            await status(sock, lambda s: s.get("state") == "primary")
            await request(sock, {"op": "command", "action": "failover", "reason": "test"})
            await status(sock, lambda s: s.get("mx_action") == "repair")
            await asyncio.sleep(0.3)  # inside the repair: SFTP, postmap, reload
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            stop(first)
        source = parse_map(mx.postfix.transport.read_text(), "transport")
        entries = [e for e in source.entries if e.key == DOMAIN]
        assert len(entries) == 1  # whole: the old entry or the repaired one, never both
        assert entries[0].value in ("smtp:[127.0.0.9]:25", mx.nexthop)

        second = start(cfg, log)
        try:
            final = await status(sock, lambda s: s.get("state") == "backup"
                                 and s.get("mail_path") == "ok")
        finally:
            stop(second)
    assert final["circuit"] == "backup"
    interrupted = [json.loads(line)["event"] for line in log.read_text().splitlines()
                   if "interrupted before it finished" in line]
    assert any("repair backup MX" in r for r in interrupted), interrupted
    fixed = parse_map(mx.postfix.transport.read_text(), "transport")
    assert [e.value for e in fixed.entries if e.key == DOMAIN] == [mx.nexthop]
    assert "example.org  smtp:[127.0.0.2]" in mx.postfix.transport.read_text()
