"""Benchmark: the daemon's RSS at rest before and after backup-MX checks and failovers
(DESIGN §10: RSS ≤ 60 MB also after MX checks have run), and what the checks cost.

`dslfailover run` as a process of its own (tests/harness.py `daemon_process`) with the
parts it has in production: MQTT to a private mosquitto, the Netopia CLI emulator over
telnet (a save runs at once), 4 probe targets on loopback every 0.5 s, and the real
backup MX of tests/mx (OpenSSH sshd + a private Postfix relaying to an aiosmtpd sink).
At rest on the primary its VmRSS is sampled every second for `--seconds`; then
`--failovers` times: a `failover` command, `backup` with the MX verified and its queue
flushed, a `failback` command, `primary`; then at rest again for `--seconds`. Reported:
max RSS of both rests (with RssAnon/RssFile at their ends) and the failovers' own
`mx_checks` (the verify between the router's apply and `backup`, from the
transition's evidence), which is on the failover's critical path.

Run as root: .venv/bin/python tests/bench/bench_mx_rest.py [--seconds 20] [--failovers 3] \
    [--router-restart 0]
With `--router-restart S` the emulator restarts to apply a save and is away S seconds (as
a real Netopia): the checks' child process then starts during the restart.
One JSON object on stdout, progress on stderr; exit 0 when both rests are ≤ 60 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daemon.lab.mosquitto import Mosquitto
from daemon.lab.postfix import PostfixInstance
from daemon.lab.sink import SmtpSink
from daemon.lab.sshd import Sshd
from router_drivers.emulator import profile, run_emulator
from tests.bench.bench_leak import logs_to_stderr
from tests.bench.benchlib import RUN_ERRORS, emit_run, need_root, progress, stats
from tests.harness import PRIMARY, DaemonProcess, Status, daemon_config, daemon_process
from tests.mx.conftest import DOMAIN, MxWorld

TARGET_RSS_MB = 60.0
SAMPLE_EVERY = 1.0
# Bounds one move: a command until the state it asks for (the apply over telnet, the MX
# verify and flush over SSH), and the start until the first `primary`.
MOVE_TIMEOUT = 60.0
ERRORS: tuple[type[Exception], ...] = (*RUN_ERRORS, AssertionError)


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"/proc/{pid}/status: no {field} line")


async def at_rest(pid: int, seconds: float) -> dict[str, Any]:
    samples: list[float] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        samples.append(status_mb(pid, "VmRSS"))
        await asyncio.sleep(SAMPLE_EVERY)
    split = {f: status_mb(pid, f) for f in ("RssAnon", "RssFile", "VmHWM")}
    return {"max_mb": max(samples), "last_mb": samples[-1], "samples": len(samples),
            "at_end_mb": split}


def mx_checks(status: Status) -> float | None:
    """The `mx_checks` duration of the last `failing_over -> backup` transition shown."""
    for event in reversed(status.get("events") or []):
        if event.get("from") == "failing_over" and event.get("to") == "backup":
            value = (event.get("detail") or {}).get("durations_s", {}).get("mx_checks")
            return float(value) if value is not None else None
    return None


def flushed(status: Status) -> bool:
    return status.get("state") == "backup" and status.get("mx_action") is None and any(
        str(e.get("reason", "")).startswith("backup MX queue flushed")
        for e in status.get("events") or [])


async def cycle(daemon: DaemonProcess) -> float | None:
    await daemon.command("failover", "bench_mx_rest")
    status = await daemon.wait(flushed, "backup, the MX verified and flushed", MOVE_TIMEOUT)
    took = mx_checks(status)
    await daemon.command("failback", "bench_mx_rest")
    await daemon.wait(lambda s: s.get("state") == "primary" and s.get("router_action") is None
                      and s.get("mx_action") is None, "primary, nothing in flight",
                      MOVE_TIMEOUT)
    return took


async def run(seconds: float, failovers: int, restart: float
              ) -> tuple[dict[str, Any], bool]:
    # 0: a CLI whose save runs at once; else one that restarts to apply, away `restart` s
    console, options = (profile("socos-immediate", fragment=False) if restart == 0 else
                        profile("socos", fragment=False, restart_delay=restart))
    dialogue = {"commands": {"restart": ""}} if restart == 0 else {}
    with tempfile.TemporaryDirectory(prefix="dslf-mxrest-") as tmpdir, \
            Mosquitto() as broker:
        tmp = Path(tmpdir)
        async with SmtpSink.started() as sink, Sshd.started() as sshd, \
                PostfixInstance.started(domain=DOMAIN,
                                        nexthop=f"smtp:[127.0.0.1]:{sink.port}") as postfix, \
                run_emulator(console, PRIMARY, options=options) as (_, port, _state):
            world = MxWorld(sink, sshd, postfix)
            cfg = daemon_config(
                tmp, site="mxrest",
                primary={"targets": ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
                         "interval": 0.5, "timeout": 0.8},
                router={"driver": "netopia-cli", "host": "127.0.0.1", "port": port,
                        "dialogue": dialogue},
                mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port},
                backup_mx=world.backup_mx_section(reflush_after=0))
            with daemon_process(cfg, log=tmp / "daemon.log") as daemon:
                await daemon.wait(lambda s: s.get("state") == "primary"
                                  and bool((s.get("mqtt") or {}).get("connected")),
                                  "primary with MQTT connected", MOVE_TIMEOUT)
                pid = daemon.proc.pid
                progress(f"daemon pid {pid} at rest on the primary; {seconds:g}s")
                before = await at_rest(pid, seconds)
                progress(f"before: {before}; {failovers} failovers with MX checks")
                checks = [t for _ in range(failovers) if (t := await cycle(daemon)) is not None]
                progress(f"mx_checks {checks}; at rest again for {seconds:g}s")
                after = await at_rest(pid, seconds)
                children = [p for p in os.listdir("/proc") if p.isdigit()
                            and _ppid(int(p)) == pid]
    ok = before["max_mb"] <= TARGET_RSS_MB and after["max_mb"] <= TARGET_RSS_MB
    return {
        "bench": "mx_rest", "pid": pid, "failovers": failovers, "router_restart_s": restart,
        "rss_before_mx": before, "rss_after_mx": after,
        "growth_mb": round(after["max_mb"] - before["max_mb"], 1),
        "mx_checks_s": stats(checks), "children_at_end": len(children),
        "targets": {"rss_max_mb_after_mx": {"target": f"<= {TARGET_RSS_MB}",
                                            "value": after["max_mb"],
                                            "pass": after["max_mb"] <= TARGET_RSS_MB}},
        "pass": ok,
        "method": ("dslfailover run (MQTT to mosquitto, netopia-cli emulator, 4 loopback "
                   "targets at 0.5 s, real sshd + private Postfix as the backup MX); RSS "
                   "of its pid at rest before and after the failovers by command"),
    }, ok


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--router-restart", type=float, default=0.0,
                        help="seconds the router is away restarting to apply (0: it "
                             "applies a save at once)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.failovers < 1 or args.router_restart < 0:
        parser.error("--seconds and --failovers must be positive, --router-restart not "
                     "negative")
    need_root("bench_mx_rest")
    logs_to_stderr()
    return emit_run("mx_rest", lambda: asyncio.run(
        run(args.seconds, args.failovers, args.router_restart)), ERRORS)


if __name__ == "__main__":
    sys.exit(main())
