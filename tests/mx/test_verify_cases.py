"""`dslfailover mx verify --json` against a real sshd and a private Postfix, case by case.

The verdict of every check comes from the real Postfix (postconf, postmap -q, the map
files read over SFTP) and the mail path from a real SMTP session opened by the remote
sshd (direct-tcpip) to the sink.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main as cli_main
from tests.harness import daemon_config

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


def write_config(w: MxWorld, path: Path, **mx: Any) -> Path:
    return daemon_config(path.parent, path.name, state_dir=None, control=None,
                         primary={"interval": None, "timeout": None},
                         backup_mx=w.backup_mx_section(**mx))


async def verify_cli(w: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                     **mx: Any) -> tuple[int, dict[str, Any]]:
    cfg = write_config(w, tmp_path / "dslfailover.toml", **mx)
    code = await asyncio.to_thread(cli_main, ["mx", "verify", "--json", "-c", str(cfg)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in report["checks"]}


def detail(report: dict[str, Any], name: str) -> str:
    return next(str(c["detail"]) for c in report["checks"] if c["name"] == name)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "postfix"
# The recorded transport cases (tests/fixtures/postfix, also read by test_maps), live:
# each is written to the real Postfix with the tunnel address 192.168.7.254:25 made the
# sink's loopback port. The cases without a port or with another port are left out: the
# sink is not on port 25, so they cannot be carried over.
TRANSPORT_CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file()
                         and p.name not in ("no_port", "wrong_port"))


def live(w: MxWorld, text: str) -> str:
    """A recorded map text (or an expected detail) with the tunnel address made the
    sink's: 192.168.7.254:25 -> 127.0.0.1:PORT, other 192.168.7.x -> 127.0.0.x."""
    port = w.sink.port
    return (text.replace("192.168.7.254]:25", f"127.0.0.1]:{port}")
            .replace("192.168.7.254:25", f"127.0.0.1:{port}")
            .replace("192.168.7.254", "127.0.0.1").replace("192.168.7.", "127.0.0."))


ALL_OK = {"transport_source": True, "transport_compiled": True, "relay_source": True,
          "relay_compiled": True, "maps_fresh": True, "mail_path": True}


async def test_correct_maps_pass_every_check_and_exit_0(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert list(report) == ["ok", "checks"]
    assert [c["name"] for c in report["checks"]] == list(ALL_OK)
    assert all(set(c) == {"name", "ok", "detail"} for c in report["checks"])
    assert verdicts(report) == ALL_OK
    assert report["ok"] is True
    assert code == 0


async def test_source_fixed_but_not_rebuilt_fails_compiled_and_fresh(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(mx.entry("smtp:[127.0.0.9]:25"))
    await mx.transport(mx.entry(), build=False)   # edited after the last postmap
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_compiled": False, "maps_fresh": False}
    assert "goes to 127.0.0.9" in detail(report, "transport_compiled")
    assert "older than" in detail(report, "maps_fresh")
    assert code == 1


@pytest.mark.parametrize("case", TRANSPORT_CASES)
async def test_recorded_map_case_gives_the_recorded_verdicts(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    # the recorded transport, its tunnel address made the sink's (see `live`)
    folder = FIXTURES / case
    expected = json.loads((folder / "expected.json").read_text())
    await mx.transport(live(mx, (folder / "transport").read_bytes().decode()))
    code, report = await verify_cli(mx, tmp_path, capsys)
    source_ok = expected["transport_source"]["ok"]
    compiled_ok = expected["postmap_q"] == expected["nexthop"]
    assert verdicts(report) == {**ALL_OK, "transport_source": source_ok,
                                "transport_compiled": compiled_ok}
    assert live(mx, expected["transport_source"]["detail_contains"]) in \
        detail(report, "transport_source")
    assert code == (0 if source_ok and compiled_ok else 1)


@pytest.mark.parametrize("case", ["relays_ok", "relays_missing"])
async def test_recorded_relay_map_case(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    await mx.relays((FIXTURES / case / "relays").read_text())
    code, report = await verify_cli(mx, tmp_path, capsys)
    relayed = case == "relays_ok"
    assert verdicts(report) == {**ALL_OK, "relay_source": relayed, "relay_compiled": relayed}
    assert code == (0 if relayed else 1)


async def test_domain_relayed_by_a_relay_domains_list_instead_of_a_map(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.relays("example.org OK\n")     # the map no longer lists us...
    await mx.postfix.set_main({"relay_domains": f"example.org, {DOMAIN}"})  # ...main.cf does
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == ALL_OK
    assert "listed in relay_domains itself" in detail(report, "relay_source")
    assert code == 0


async def test_mail_path_fails_naming_the_step_when_the_sink_is_down(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.sink.stop()
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "mail_path": False}
    assert "connect: the MX could not open the connection" in detail(report, "mail_path")
    assert code == 1


async def test_unknown_host_key_exits_1_with_a_clear_message(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "known_hosts_other"
    other.write_text("[127.0.0.1]:1 ssh-ed25519 " + mx.sshd.known_hosts.read_text().split()[2]
                     + "\n")
    code, report = await verify_cli(mx, tmp_path, capsys, known_hosts=other)
    assert report["ok"] is False
    assert report["checks"] == []
    assert "cannot reach the backup MX" in report["error"]
    assert "host key not accepted" in report["error"]
    assert code == 1


async def test_sshd_down_exits_1_saying_the_mx_cannot_be_reached(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.sshd.pause()
    try:
        code, report = await verify_cli(mx, tmp_path, capsys)
    finally:
        await mx.sshd.start_again()
    assert "cannot reach the backup MX" in report["error"]
    assert "Connection refused" in report["error"]
    assert code == 1
