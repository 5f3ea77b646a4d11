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
from tests.siteconf import wan_tables

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


def write_config(w: MxWorld, path: Path, **mx: Any) -> Path:
    s = w.settings(**mx)
    path.write_text(f"""\
site = "test"
[primary]
targets = ["127.0.0.1"]
[router]
driver = "dry-run"
{wan_tables()}[backup_mx]
host = "{s.host}"
port = {s.port}
user = "{s.user}"
key_file = "{s.key_file}"
known_hosts = "{s.known_hosts}"
domain = "{s.domain}"
nexthop = "{s.nexthop}"
config_dir = "{s.config_dir}"
connect_timeout = 5
command_timeout = 10
""")
    return path


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


async def test_wrong_ip_fails_source_and_compiled(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(mx.entry(f"smtp:[127.0.0.9]:{mx.sink.port}"))
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False,
                                "transport_compiled": False}
    assert "goes to 127.0.0.9, expected 127.0.0.1" in detail(report, "transport_source")
    assert code == 1


async def test_nexthop_without_brackets_fails_and_says_why(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(mx.entry(f"smtp:127.0.0.1:{mx.sink.port}"))
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False,
                                "transport_compiled": False}
    assert "no [brackets]: Postfix would look up MX records" in \
        detail(report, "transport_compiled")
    assert code == 1


async def test_missing_entry_fails_source_and_compiled(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport("example.org  smtp:[127.0.0.2]\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False,
                                "transport_compiled": False}
    assert f"no active entry for {DOMAIN}" in detail(report, "transport_source")
    assert f"postmap -q {DOMAIN} found no entry" in detail(report, "transport_compiled")
    assert code == 1


async def test_only_a_dot_domain_entry_does_not_cover_the_domain(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(f".{DOMAIN}  {mx.nexthop}\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False,
                                "transport_compiled": False}
    assert "matches its subdomains, not the domain itself" in \
        detail(report, "transport_source")
    assert code == 1


async def test_uppercase_key_is_the_same_domain(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(f"UnixWiz.NET  {mx.nexthop}\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == ALL_OK
    assert code == 0


async def test_entry_continued_on_the_next_line_is_read_as_one(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(f"# long\n{DOMAIN}\n    {mx.nexthop}\nexample.org smtp:[127.0.0.2]\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == ALL_OK
    assert "line 2:" in detail(report, "transport_source")
    assert code == 0


async def test_duplicate_entry_fails_source_though_postmap_keeps_the_first(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(mx.entry() + "example.org smtp:[127.0.0.2]\n"
                       + mx.entry("smtp:[127.0.0.9]:25"))
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False}
    assert f"2 active entries for {DOMAIN} (lines 1, 3)" in detail(report, "transport_source")
    assert code == 1


async def test_commented_out_entry_counts_as_missing(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport("#" + mx.entry() + "example.org smtp:[127.0.0.2]\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "transport_source": False,
                                "transport_compiled": False}
    assert "line 1 mentions it in a comment" in detail(report, "transport_source")
    assert code == 1


async def test_crlf_transport_file_is_read_like_postmap_reads_it(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.transport(f"# dos\r\nexample.org smtp:[127.0.0.2]\r\n{DOMAIN} {mx.nexthop}\r\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == ALL_OK
    assert code == 0


async def test_domain_relayed_by_a_relay_domains_list_instead_of_a_map(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.relays("example.org OK\n")     # the map no longer lists us...
    await mx.postfix.set_main({"relay_domains": f"example.org, {DOMAIN}"})  # ...main.cf does
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == ALL_OK
    assert "listed in relay_domains itself" in detail(report, "relay_source")
    assert code == 0


async def test_domain_missing_from_the_relay_map_is_not_relayed(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await mx.relays("example.org OK\n")
    code, report = await verify_cli(mx, tmp_path, capsys)
    assert verdicts(report) == {**ALL_OK, "relay_source": False, "relay_compiled": False}
    assert code == 1


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
