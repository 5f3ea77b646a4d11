"""Benchmark: the chaos soak (DESIGN §10: 0 invariant violations, 0 mails lost).

In a fresh lab, for `--minutes` (default 15), a seeded schedule of faults one after the
other (daemon/lab/chaos.py: cuts, flaps, loss bursts, 20 % random loss, one-way loss,
the router's telnet hanging or refusing, a slower router restart, the backup MX's sshd
down, the broker restarted, the daemon killed with SIGKILL or stopped with SIGTERM and
started again), with the invariants checked all along and at the end
(daemon/lab/chaos_watch.py, chaos_run.py). The same seed gives the same faults.

Run as root: .venv/bin/python tests/bench/bench_chaos.py [--minutes 15] [--seed 1]
    [--router-restart 5] [--console cli|menu] [--kinds cut,daemon_kill,...]
One JSON object on stdout (faults by kind, violations with their evidence, mails sent
and delivered, router actions, what the daemon did per kind of fault, every episode),
progress on stderr; exit 0 when there is no violation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, cast

from daemon.lab.chaos import KINDS, FaultKind
from daemon.lab.chaos_run import ChaosOptions, ChaosRun
from daemon.lab.site import running_lab
from tests.bench.benchlib import RUN_ERRORS, emit, need_root, progress

# The lab's router away this long per restart: shorter than a real unit's ~20 s, so a
# run of 15 minutes holds more faults (a slow restart is three times this).
ROUTER_RESTART = 5.0


async def run(options: ChaosOptions, console: str, router_restart: float) -> dict[str, Any]:
    async with running_lab(console=console, router_restart=router_restart) as lab:
        progress(f"lab {lab.lab_id} up (console {console}, router restart "
                 f"{router_restart:g}s); chaos for {options.minutes:g} min, seed "
                 f"{options.seed}")
        report = await ChaosRun(lab, options, progress=progress).run()
    return {"bench": "chaos", **report, "pass": report["violations"]["total"] == 0}


def kinds_arg(text: str) -> tuple[FaultKind, ...]:
    names = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown kinds {unknown}: use {', '.join(KINDS)}")
    return cast(tuple[FaultKind, ...], names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--router-restart", type=float, default=ROUTER_RESTART, metavar="S")
    parser.add_argument("--console", choices=["cli", "menu"], default="cli")
    parser.add_argument("--kinds", type=kinds_arg, default=KINDS,
                        help=f"comma-separated fault kinds (default all: {','.join(KINDS)})")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    need_root("bench_chaos")
    options = ChaosOptions(seed=args.seed, minutes=args.minutes, kinds=args.kinds)
    try:
        result = asyncio.run(run(options, args.console, args.router_restart))
    except RUN_ERRORS as exc:
        result = {"bench": "chaos", "pass": False, "errors": [f"{type(exc).__name__}: {exc}"]}
    emit(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
