"""Benchmark: the daemon at rest in the lab (state `primary`, no loss): its RSS and CPU.

RSS is VmRSS of /proc/<pid>/status, sampled every second; CPU is the utime + stime
delta of /proc/<pid>/stat over the whole run, as % of one core. The pid is the one
`lab.spawn` started: `ip netns exec` execs python in place, which is checked on
/proc/<pid>/cmdline before measuring. `--mqtt both` (the default) measures twice, each
in a fresh lab: with MQTT as the lab configures it, then with `[mqtt] enabled = false`,
so that what the publisher costs is the difference.

Run as root: .venv/bin/python tests/bench/bench_rest.py [--seconds 60] [--mqtt on|off|both]
One JSON object on stdout (`runs`: one entry per MQTT setting), progress on stderr; exit 0
when every run has RSS <= 60 MB and CPU <= 0.5 % of a core (DESIGN §10).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from daemon.resources import of_process, status_kb
from tests.bench.benchlib import RUN_ERRORS, emit, lab_with_daemon, need_root, progress

TARGET_RSS_MB = 60.0
TARGET_CPU_PCT = 0.5
MQTT_MODES = {"on": (True,), "off": (False,), "both": (True, False)}
SAMPLE_EVERY = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def rss_kb(pid: int) -> int:
    return status_kb(pid, "VmRSS")


def cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # fields after the command name (which may hold spaces) start at ')'; utime and
    # stime are fields 14 and 15 of the whole line, 12 and 13 after it
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


async def run(seconds: float, mqtt: bool) -> tuple[dict[str, Any], bool]:
    overrides = {} if mqtt else {"mqtt": {"enabled": False}}
    async with lab_with_daemon(overrides=overrides) as (lab, daemon):
        assert daemon.proc is not None
        pid = daemon.proc.pid
        argv = cmdline(pid)
        if not argv or "python" not in Path(argv[0]).name or "daemon.cli" not in argv:
            raise RuntimeError(f"pid {pid} is not the daemon's python: {argv}")
        status = await daemon.status()
        progress(f"daemon pid {pid} ({' '.join(argv[:4])} ...) at rest in state "
                 f"{status.get('state')}; sampling for {seconds:g}s")
        samples: list[int] = []
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        while (elapsed := time.monotonic() - t0) < seconds:
            samples.append(rss_kb(pid))
            await asyncio.sleep(min(SAMPLE_EVERY, max(0.0, seconds - elapsed)))
        t1, c1 = time.monotonic(), cpu_ticks(pid)
        samples.append(rss_kb(pid))
        end_status = await daemon.status()
        n_threads = of_process(pid).threads
        # where the RSS is: anonymous (heap: imported modules, objects) vs. file-backed
        # (the interpreter and shared libraries, shared with other processes)
        split = {f: round(status_kb(pid, f) / 1024, 1)
                 for f in ("RssAnon", "RssFile", "RssShmem", "VmHWM")}
        daemon.read()
        transitions = [f"{a}->{b}" for a, b in daemon.transitions()]
        lab_id = lab.lab_id
    cpu_pct = (c1 - c0) / CLK_TCK / (t1 - t0) * 100
    rss_max = max(samples) / 1024
    targets = {
        "rss_max_mb": {"target": f"<= {TARGET_RSS_MB}", "value": round(rss_max, 1),
                       "pass": rss_max <= TARGET_RSS_MB},
        "cpu_pct_of_one_core": {"target": f"<= {TARGET_CPU_PCT}", "value": round(cpu_pct, 3),
                                "pass": cpu_pct <= TARGET_CPU_PCT},
    }
    stayed = end_status.get("state") == "primary"
    ok = all(t["pass"] for t in targets.values()) and stayed
    return {
        "mqtt": mqtt, "lab": lab_id, "seconds": round(t1 - t0, 1), "pid": pid,
        "cmdline": argv,
        "rss_mb": {"first": round(samples[0] / 1024, 1), "last": round(samples[-1] / 1024, 1),
                   "max": round(rss_max, 1), "samples": len(samples),
                   "at_end_mb": split},
        "cpu": {"ticks": c1 - c0, "clk_tck": CLK_TCK, "pct_of_one_core": round(cpu_pct, 3)},
        "threads": n_threads, "state_at_end": end_status.get("state"),
        "primary_link_at_end": end_status.get("primary_link"),
        "transitions": transitions, "targets": targets, "pass": ok,
        "method": ("after the daemon reached primary with the link up; probing every 0.5 s "
                   f"to 4 targets (lab defaults), MQTT {'connected' if mqtt else 'off'}, "
                   "control socket polled twice (start and end)"),
    }, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mqtt", choices=list(MQTT_MODES), default="both",
                        help="measure with MQTT, without, or both (default; two labs)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    need_root("bench_rest")
    runs: dict[str, dict[str, Any]] = {}
    passed = True
    for mqtt in MQTT_MODES[args.mqtt]:
        name = "mqtt_on" if mqtt else "mqtt_off"
        try:
            runs[name], ok = asyncio.run(run(args.seconds, mqtt))
        except RUN_ERRORS as exc:
            runs[name], ok = {"mqtt": mqtt, "errors": [f"{type(exc).__name__}: {exc}"]}, False
        passed = passed and ok
    summary = {name: {"cpu_pct_of_one_core": r.get("cpu", {}).get("pct_of_one_core"),
                      "rss_max_mb": r.get("rss_mb", {}).get("max")}
               for name, r in runs.items()}
    emit({"bench": "rest", "summary": summary, "runs": runs, "pass": passed})
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
