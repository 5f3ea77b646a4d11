"""`dslfailover mx verify` with `[dns]`, through the real CLI: the six checks against the
real sshd and private Postfix of tests/mx, the DNS checks against a real NSD on
loopback, in one report; and the DNS checks still reported when the MX cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main as cli_main
from daemon.lab.launcher import free_port
from daemon.lab.nsd import StartNsd
from tests.harness import daemon_config
from tests.mx.conftest import MxWorld

from .conftest import (
    BACKUP_MX,
    LOOKUP_TIMEOUT,
    PRIMARY_MX,
    PRIMARY_PUBLIC,
    our_zone,
    zones,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]

SIX = ["transport_source", "transport_compiled", "relay_source", "relay_compiled",
       "maps_fresh", "mail_path"]


def write_config(w: MxWorld, path: Path, dns_port: int, **mx: Any) -> Path:
    dns = {"primary_mx": PRIMARY_MX, "backup_mx": BACKUP_MX,
           "primary_public": list(PRIMARY_PUBLIC), "nameservers": ["127.0.0.1"],
           "port": dns_port, "timeout": LOOKUP_TIMEOUT}
    return daemon_config(path.parent, path.name, state_dir=None, control=None,
                         primary={"interval": None, "timeout": None},
                         backup_mx=w.backup_mx_section(**mx), dns=dns)


async def verify(cfg: Path, capsys: pytest.CaptureFixture[str], *options: str
                 ) -> tuple[int, str]:
    code = await asyncio.to_thread(cli_main, ["mx", "verify", *options, "-c", str(cfg)])
    return code, capsys.readouterr().out


async def verify_json(cfg: Path, capsys: pytest.CaptureFixture[str]
                      ) -> tuple[int, dict[str, Any]]:
    code, out = await verify(cfg, capsys, "--json")
    return code, json.loads(out)


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in report["checks"]}


async def test_the_correct_zone_adds_two_ok_checks_after_the_six(
        mx: MxWorld, start_nsd: StartNsd, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones())
    code, report = await verify_json(write_config(mx, tmp_path / "c.toml", nsd.port), capsys)
    assert [c["name"] for c in report["checks"]] == [*SIX, "dns_mx", "dns_primary"]
    assert all(verdicts(report).values())
    assert report["ok"] is True and report["dns"] == "ok"
    dns_mx = report["checks"][6]
    assert dns_mx["health"] == "ok"
    assert dns_mx["records"] == ["10 mail.unixwiz.net.", f"20 {BACKUP_MX}."]
    assert code == 0


async def test_a_missing_backup_mx_record_fails_the_verify(
        mx: MxWorld, start_nsd: StartNsd, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones(our_zone(mx=("10 mail",))))
    code, report = await verify_json(write_config(mx, tmp_path / "c.toml", nsd.port), capsys)
    assert [name for name, ok in verdicts(report).items() if not ok] == ["dns_mx"]
    assert report["ok"] is False and report["dns"] == "failing"
    assert f"the backup MX {BACKUP_MX} is missing" in report["checks"][6]["detail"]
    assert code == 1


async def test_our_mx_pointing_elsewhere_fails_the_verify(
        mx: MxWorld, start_nsd: StartNsd, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones(our_zone(mail=("A 203.0.113.7",))))
    code, report = await verify_json(write_config(mx, tmp_path / "c.toml", nsd.port), capsys)
    assert [name for name, ok in verdicts(report).items() if not ok] == ["dns_primary"]
    assert "points elsewhere: 203.0.113.7" in report["checks"][7]["detail"]
    assert code == 1


async def test_a_silent_nameserver_is_unknown_and_fails_the_verify(
        mx: MxWorld, silent_port: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, report = await verify_json(write_config(mx, tmp_path / "c.toml", silent_port),
                                     capsys)
    assert report["dns"] == "unknown" and report["ok"] is False
    assert [c["health"] for c in report["checks"][6:]] == ["unknown", "unknown"]
    assert all(verdicts(report)[name] for name in SIX)
    assert code == 1


async def test_the_dns_checks_run_when_the_mx_cannot_be_reached(
        mx: MxWorld, start_nsd: StartNsd, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones())
    closed = free_port()   # nothing listens: the SSH connection is refused at once
    cfg = write_config(mx, tmp_path / "c.toml", nsd.port, port=closed)
    code, report = await verify_json(cfg, capsys)
    assert verdicts(report) == {"dns_mx": True, "dns_primary": True}
    assert report["error"].startswith("cannot reach the backup MX")
    assert report["ok"] is False and report["dns"] == "ok"
    assert code == 1


async def test_the_table_shows_the_dns_checks_and_their_verdict(
        mx: MxWorld, start_nsd: StartNsd, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones(our_zone(mx=("10 mail", f"10 {BACKUP_MX}."))))
    code, out = await verify(write_config(mx, tmp_path / "c.toml", nsd.port), capsys)
    lines = out.splitlines()
    assert lines[6].startswith("dns_mx              FAIL  ")
    assert lines[7].startswith("dns_primary         ok    mail.unixwiz.net resolves to ")
    assert lines[-2:] == ["backup MX: ready (0 of 6 checks failed)",
                          "dns: failing (1 of 2 checks not ok)"]
    assert code == 1
