"""`dslfailover probe`: every check once against real loopback peers; exit 0 or 1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from daemon.cli import main
from daemon.lab.nsd import StartNsd
from tests.dns.conftest import zones
from tests.harness import daemon_config, free_port

from .conftest import dns_section


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(object(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def config(tmp: Path, smtp_port: int) -> Path:
    return daemon_config(
        tmp, site="probe",
        primary={"targets": ["127.0.0.1", "127.0.0.2"], "interval": None, "timeout": None},
        tunnel={"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "timeout": 2.0})


def test_all_healthy_exits_0_with_every_check(tmp_path: Path, smtp_port: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--json", "-c", str(config(tmp_path, smtp_port))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names == ["icmp 127.0.0.1", "icmp 127.0.0.2", f"smtp 127.0.0.1:{smtp_port}",
                     "router"]
    assert "primary circuit" in report["checks"][-1]["detail"]


def test_a_dead_tunnel_exits_1_and_says_where(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dead = free_port()
    assert main(["probe", "-c", str(config(tmp_path, dead))]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "smtp" in ln)
    assert line.startswith("FAIL") and "connect:" in line


async def test_with_dns_the_two_dns_checks_follow(
        tmp_path: Path, smtp_port: int, start_nsd: StartNsd,
        capsys: pytest.CaptureFixture[str]) -> None:
    nsd = await start_nsd(zones())
    cfg = daemon_config(
        tmp_path, site="probe", dns=dns_section(nsd.port),
        primary={"targets": ["127.0.0.1"], "interval": None, "timeout": None})
    assert await asyncio.to_thread(main, ["probe", "--json", "-c", str(cfg)]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [c["name"] for c in checks][-2:] == ["dns_mx", "dns_primary"]
    assert all(c["ok"] for c in checks[-2:])
