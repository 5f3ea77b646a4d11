"""kill -9 of the daemon while it repairs the backup MX's maps, for real.

The daemon (a subprocess, Netopia CLI emulator as the router, the real sshd + private
Postfix of tests/mx) fails over, finds the transport entry wrong, and starts a repair; it
is killed in the middle. The map source is then either the old file or the repaired one,
never half-written; after a restart the interrupted repair is reported, the MX is
verified again and, repair being allowed, fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postfix_sync.maps import parse_map
from router_drivers.emulator import EmulatorOptions, run_emulator
from tests.harness import PRIMARY, daemon_config, daemon_process, secret_file

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root, pytest.mark.slow]

PASSWORD = "repair-pw"


def config(tmp: Path, w: MxWorld, router_port: int) -> Path:
    secret_file(tmp / "router.password", PASSWORD)
    return daemon_config(
        tmp, site="repaircrash",
        router={"driver": "netopia-cli", "host": "127.0.0.1", "port": router_port,
                "password_file": "router.password"},
        backup_mx=w.backup_mx_section(repair=True))


async def test_kill_during_a_repair_leaves_the_map_whole_and_the_restart_finishes_it(
        mx: MxWorld, tmp_path: Path) -> None:
    wrong = f"# transport\nexample.org  smtp:[127.0.0.2]\n{DOMAIN}  smtp:[127.0.0.9]:25\n"
    await mx.transport(wrong)
    log = tmp_path / "daemon.log"
    async with run_emulator("cli", PRIMARY, options=EmulatorOptions(password=PASSWORD)
                            ) as (_, port, _router):
        cfg = config(tmp_path, mx, port)
        with daemon_process(cfg, log=log, args=["--log-format", "json"]) as first:
            await first.wait_state("primary", timeout=60)
            await first.command("failover")
            await first.wait(lambda s: s.get("mx_action") == "repair", "the MX repair",
                             timeout=60)
            first.kill9()
        source = parse_map(mx.postfix.transport.read_text(), "transport")
        entries = [e for e in source.entries if e.key == DOMAIN]
        assert len(entries) == 1  # whole: the old entry or the repaired one, never both
        assert entries[0].value in ("smtp:[127.0.0.9]:25", mx.nexthop)

        with daemon_process(cfg, log=log, args=["--log-format", "json"]) as second:
            final = await second.wait(lambda s: s.get("state") == "backup"
                                      and s.get("mail_path") == "ok",
                                      "state backup with the mail path ok", timeout=60)
    assert final["circuit"] == "backup"
    interrupted = [json.loads(line)["event"] for line in log.read_text().splitlines()
                   if "interrupted before it finished" in line]
    assert any("repair backup MX" in r for r in interrupted), interrupted
    fixed = parse_map(mx.postfix.transport.read_text(), "transport")
    assert [e.value for e in fixed.entries if e.key == DOMAIN] == [mx.nexthop]
    assert "example.org  smtp:[127.0.0.2]" in mx.postfix.transport.read_text()
