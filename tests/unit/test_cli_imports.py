"""The CLI stays quick by what it does not import: `--help` and `status` never load the
config schema (pydantic) or asyncio's world for nothing (the timings: bench_cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import GROUPS, build_parser
from tests.harness import daemon_config

# What a quick call must not have imported when it ends.
HEAVY = ("pydantic", "structlog", "router_drivers.skeleton", "daemon.machine", "daemon.lab.site")
# Bounds one child interpreter.
CHILD_TIMEOUT = 30.0

_PROBE = """
import contextlib, io, json, sys
from daemon.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported_by(*argv: str) -> tuple[object, set[str]]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    return result["code"], set(result["modules"])


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"], ["lab", "--help"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code, modules = imported_by(*argv)
    assert code == 0
    assert not [m for m in HEAVY if m in modules]


def test_status_reads_the_socket_without_the_schema(tmp_path: Path) -> None:
    code, modules = imported_by("status", "-c", str(daemon_config(tmp_path)))
    assert code == 69   # nobody listens: the point is what it took to find that out
    assert not [m for m in HEAVY if m in modules]


def test_the_command_table_names_what_each_module_registers() -> None:
    full = build_parser([])
    [sub] = [a for a in full._actions if a.dest == "command"]
    assert set(sub.choices) == set(GROUPS)   # type: ignore[arg-type]
    for command in GROUPS:
        [only] = [a for a in build_parser([command])._actions if a.dest == "command"]
        assert command in only.choices   # type: ignore[operator]


def test_an_option_before_the_command_gets_the_whole_parser() -> None:
    [sub] = [a for a in build_parser(["-h", "status"])._actions if a.dest == "command"]
    assert set(sub.choices) == set(GROUPS)   # type: ignore[arg-type]
