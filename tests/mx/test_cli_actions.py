"""`dslfailover mx repair --dry-run` and `mx flush` through the real CLI entry point."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from daemon.cli import main as cli_main

from .conftest import MxWorld
from .test_verify_cases import write_config

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


async def test_repair_dry_run_prints_the_diff_and_changes_nothing(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = mx.entry("smtp:[127.0.0.9]:25").encode()
    await mx.transport(wrong)
    cfg = write_config(mx, tmp_path / "c.toml")
    code = await asyncio.to_thread(cli_main, ["mx", "repair", "--dry-run", "-c", str(cfg)])
    out = capsys.readouterr().out
    assert "-unixwiz.net  smtp:[127.0.0.9]:25" in out
    assert f"+unixwiz.net  {mx.nexthop}" in out
    assert "dry run, nothing written" in out
    assert mx.postfix.transport.read_bytes() == wrong
    assert code == 0


async def test_flush_json_reports_the_command_and_counts(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(mx, tmp_path / "c.toml")
    code = await asyncio.to_thread(cli_main, ["mx", "flush", "--json", "-c", str(cfg)])
    report = json.loads(capsys.readouterr().out)
    assert report["command"].endswith("-s unixwiz.net")
    assert report["deferred_before"] == 0 and report["deferred_after"] == 0
    assert code == 0


async def test_verify_without_json_prints_a_readable_table(
        mx: MxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(mx, tmp_path / "c.toml")
    code = await asyncio.to_thread(cli_main, ["mx", "verify", "-c", str(cfg)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("transport_source    ok    ")
    assert out[-1] == "backup MX: ready (0 of 6 checks failed)"
    assert code == 0
