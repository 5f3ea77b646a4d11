"""Benchmark: how long the CLI takes, call by call (issue: `--help`, `status`, `check`
at most 0.25 s on this machine).

Each command runs as its own `dslfailover` process, `--rounds` times, wall clock from
spawn to exit. `status` asks a real `dslfailover run` (tests/harness.py `daemon_process`:
dry-run router, probes to 127.0.0.1, control socket in a temp dir). The package's
bytecode is compiled first, as `pip install` leaves it (this environment sets
PYTHONDONTWRITEBYTECODE, so nothing else writes it).

Run as root: .venv/bin/python tests/bench/bench_cli.py [--rounds 20]
One JSON object on stdout; exit 0 when every command's median is within the target.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.benchlib import RUN_ERRORS, emit_run, need_root, progress, stats
from tests.harness import BIN, daemon_config, daemon_process

TARGET_S = 0.25
# Bounds one CLI call (a hung one is a failed bench, not a hung one).
CALL_TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=CALL_TIMEOUT, check=False)
    return time.perf_counter() - started


async def measure(rounds: int) -> tuple[dict[str, Any], bool]:
    for package in ("daemon", "router_drivers", "postfix_sync"):
        compileall.compile_dir(ROOT / package, quiet=1)
    with tempfile.TemporaryDirectory(prefix="dslfailover-bench-cli-") as tmp:
        config = daemon_config(Path(tmp))
        commands = {
            "--help": [str(BIN), "--help"],
            "status": [str(BIN), "status", "-c", str(config)],
            "check": [str(BIN), "check", "-c", str(config)],
            "status --help": [str(BIN), "status", "--help"],
        }
        with daemon_process(config) as daemon:
            await daemon.wait_state("primary")
            progress(f"daemon pid {daemon.proc.pid} on primary; {rounds} rounds")
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(rounds):
                for name, argv in commands.items():
                    times[name].append(timed(argv))
    figures = {name: stats(values) for name, values in times.items()}
    ok = all((f.get("median") or 0) <= TARGET_S for f in figures.values())
    return {"bench": "cli", "target_s": TARGET_S, "rounds": rounds,
            "python": sys.version.split()[0], "seconds": figures, "pass": ok}, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    need_root("bench_cli")
    return emit_run("cli", lambda: asyncio.run(measure(args.rounds)), RUN_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
