"""Benchmark: how long `dslfailover run` takes to stop on SIGTERM, per phase.

The rounds of tests/component/test_stop.py (the Netopia CLI emulator restarting to apply,
a real mosquitto on loopback, SIGTERM at a seeded random moment of start-up, primary,
failing_over, backup, failing_back), more of them. Each stop is timed from the signal to
the process's exit. Targets (README "Stopping"): every stop within 3 s, except one with a
router apply in flight (failing_over, failing_back), which may take the rest of the apply
(the grace, `router.action_timeout`). Also: how long after its start the process catches
SIGTERM (before that, only the interpreter's own start).

Run as root: .venv/bin/python tests/bench/bench_stop.py [--rounds 10] [--seed 11]
One JSON object on stdout, progress on stderr; exit 0 when every round was clean (exit 0,
`offline`, the router whole) and the stops outside an apply met the 3 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import structlog

from daemon.lab.mosquitto import Mosquitto
from tests.bench.benchlib import emit, need_root, progress, stats
from tests.component.test_stop import (
    ACTION_TIMEOUT,
    Phase,
    Stopped,
    problems,
    stop_round,
    stop_site,
)

TARGET_STOP_S = 3.0
# a router apply may be in flight: it is finished first (bounded by the grace)
IN_APPLY = (Phase.FAILING_OVER, Phase.FAILING_BACK)


async def bench(rounds: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    results: dict[Phase, list[Stopped]] = defaultdict(list)
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-stop-") as tmp, Mosquitto() as broker:
        async with stop_site(Path(tmp), broker) as site:
            for n, phase in enumerate(p for p in Phase for _ in range(rounds)):
                r = await stop_round(site, phase, rng, n)
                results[phase].append(r)
                bad += [f"round {n} ({phase.value}): {p}" for p in problems(site, r)]
                progress(f"{phase.value:13} +{r.delay:.2f}s -> exit {r.code} in "
                         f"{r.seconds:.3f}s, availability {r.availability}")
    phases = {}
    for phase, rs in results.items():
        seconds = [r.seconds for r in rs]
        phases[phase.value] = {
            "rounds": len(rs), "stop_s": stats(seconds),
            "exit_codes": sorted({r.code for r in rs}),
            "offline": sum(r.availability == "offline" for r in rs),
            "target_s": f"<= {ACTION_TIMEOUT:g} (grace)" if phase in IN_APPLY
                        else f"<= {TARGET_STOP_S:g}"}
    startup = [r.handler_s for r in results[Phase.STARTUP] if r.handler_s is not None]
    quick = [r.seconds for p, rs in results.items() if p not in IN_APPLY for r in rs]
    return {"bench": "stop", "seed": seed, "rounds_per_phase": rounds, "phases": phases,
            "sigterm_handler_after_start_s": stats(startup),
            "problems": bad,
            "pass": not bad and max(quick, default=0.0) <= TARGET_STOP_S}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per phase")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    need_root("bench_stop")
    # the emulator runs in this process: its log lines go to stderr, the JSON alone to stdout
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    result = asyncio.run(bench(args.rounds, args.seed))
    emit(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
