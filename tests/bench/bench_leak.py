"""Benchmark: no slow leak over N failover/failback cycles (DESIGN §10: growth over 1000
cycles RSS ≤ 1 MB, fds 0, tasks 0).

The real daemon (`daemon.app.Daemon`, in this process: tests/harness.py's
`running_daemon`) with `[failback] mode = "auto"` and no hold-down, the Netopia menu
emulator over real telnet (profile "immediate": a save applies at once), and the real
backup MX of tests/mx (OpenSSH sshd + a private Postfix relaying to an aiosmtpd sink):
on every `--mx-every`-th cycle sshd is up and the failover verifies the MX over SSH and
flushes its queue, as in production; in between sshd is down and the verify is refused
(the "SSH to the backup MX down" fault: a failed check, `backup` all the same).

Time is compressed: 0.05 s rounds, down after 2 failed rounds, up after 2 good ones.
The primary's one target, 10.200.0.1, is an address of a veth end in a network
namespace of this process's own (unshared at start: nothing here touches the host's
network); a cut deletes the address (echoes go unanswered), a restore adds it back.
Each cycle: cut, wait for `backup` and the flush; restore, wait for `primary` with the
link up and no action in flight. At that quiet point, after `gc.collect()`, this process
is sampled: VmRSS (/proc/self/status), open fds (/proc/self/fd), asyncio tasks; at the
start, after the warm-up cycle and every `--every` cycles. Growth per 1000 cycles is
(last − warm-up) scaled to 1000 cycles.

Run as root: .venv/bin/python tests/bench/bench_leak.py [--cycles 1000] [--warmup 50] \
    [--every 100] [--mx-every 10]
One JSON object on stdout, progress on stderr; exit 0 when every growth target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from daemon.app import Daemon
from daemon.lab.postfix import PostfixInstance
from daemon.lab.sink import SmtpSink
from daemon.lab.sshd import Sshd
from daemon.model import State
from daemon.resources import of_self
from router_drivers.emulator import profile, run_emulator
from tests.bench.benchlib import RUN_ERRORS, emit_run, need_root, progress
from tests.harness import PRIMARY, daemon_config, running_daemon, wait_daemon
from tests.mx.conftest import DOMAIN, MxWorld

TARGET_RSS_MB = 1.0
TARGET_FDS = 0
TARGET_TASKS = 0
CLONE_NEWNET = 0x40000000
# the primary's target (cut = deleted) and the failback probes' source, on veth v0
TARGET = "10.200.0.1"
SOURCE = "10.200.0.2"
# Bounds one step of a cycle: a cut until `backup` and the flush (detection 0.1 s, the
# menu dialogue, the MX verify and flush over SSH), a restore until `primary`.
STEP_TIMEOUT = 30.0
# What ends the run as a failed result: the benches' own, a wait of the harness that
# timed out (AssertionError), an `ip` command that failed.
ERRORS: tuple[type[Exception], ...] = (*RUN_ERRORS, AssertionError,
                                       subprocess.CalledProcessError)


@dataclass(frozen=True, slots=True)
class Sample:
    cycle: int
    rss_kb: int
    fds: int
    tasks: int
    seconds: float


def logs_to_stderr() -> None:
    """Log lines of the parts in this process (daemon, emulator) would go to stdout,
    which holds the JSON: warnings and errors go to stderr, the rest nowhere."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def private_netns() -> None:
    """Move this process (and all it starts later) into a new network namespace with
    loopback up and veth v0 (10.200.0.2/24) whose peer v1 has no address."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    for argv in (["ip", "link", "set", "lo", "up"],
                 ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                 ["ip", "addr", "add", f"{SOURCE}/24", "dev", "v0"],
                 ["ip", "link", "set", "v0", "up"], ["ip", "link", "set", "v1", "up"]):
        subprocess.run(argv, check=True, capture_output=True, timeout=10)


async def target(answering: bool) -> None:
    """Make the primary's target answer (its address on v0) or not (deleted)."""
    verb = "add" if answering else "del"
    proc = await asyncio.create_subprocess_exec(
        "ip", "addr", verb, f"{TARGET}/32", "dev", "v0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ip addr {verb} {TARGET}: {err.decode().strip()}")


def sample(cycle: int, t0: float) -> Sample:
    gc.collect()
    now = of_self()
    assert now.tasks is not None
    return Sample(cycle, now.rss_kb, now.open_fds, now.tasks, round(time.monotonic() - t0, 1))


def quiet(daemon: Daemon) -> bool:
    ctx = daemon.ctx
    return (ctx is not None and ctx.state == State.PRIMARY and ctx.primary_link.value == "up"
            and ctx.router_job is None and ctx.mx_job is None)


def on_backup(daemon: Daemon, *, flushed: bool) -> bool:
    """On backup with the MX checks done (and, when the MX answers, its queue flushed)."""
    ctx = daemon.ctx
    return (ctx is not None and ctx.state == State.BACKUP and ctx.mx_job is None
            and ctx.flushed == flushed)


def per_1000(first: float, last: float, cycles: int) -> float:
    return (last - first) / cycles * 1000 if cycles else 0.0


def config(tmp: Path, world: MxWorld, port: int) -> Path:
    return daemon_config(
        tmp, site="leak",
        primary={"targets": [TARGET], "interval": 0.05, "timeout": 0.04, "down_after": 2,
                 "up_after": 2, "privileged": "yes"},
        # a CLI whose save runs at once: no restart command
        router={"driver": "netopia-cli", "host": "127.0.0.1", "port": port,
                "dialogue": {"commands": {"restart": ""}}},
        failback={"mode": "auto", "hold_down": 0, "hold_down_max": 0, "flap_window": 0,
                  "source": SOURCE},
        backup_mx=world.backup_mx_section(reflush_after=0, verify_interval=3600))


async def run(cycles: int, warmup: int, every: int, mx_every: int
              ) -> tuple[dict[str, Any], bool]:
    console, options = profile("socos-immediate", fragment=False)
    with tempfile.TemporaryDirectory(prefix="dslf-leak-") as tmpdir:
        tmp = Path(tmpdir)
        async with SmtpSink.started() as sink, Sshd.started() as sshd, \
                PostfixInstance.started(domain=DOMAIN,
                                        nexthop=f"smtp:[127.0.0.1]:{sink.port}") as postfix, \
                run_emulator(console, PRIMARY, options=options) as (_, port, router):
            world = MxWorld(sink, sshd, postfix)
            await sshd.pause()   # up only on every mx_every-th cycle
            await target(True)
            async with running_daemon(config(tmp, world, port), ready=[State.PRIMARY],
                                      timeout=STEP_TIMEOUT) as daemon:
                await wait_daemon(daemon, quiet, "primary, link up, nothing in flight",
                                  STEP_TIMEOUT)
                t0 = time.monotonic()
                samples = [sample(0, t0)]
                progress(f"at rest on the primary: {samples[0]}; {cycles} cycles")
                mx_ok = 0
                for n in range(1, cycles + 1):
                    mx_up = n % mx_every == 0
                    if mx_up:
                        await sshd.start_again()
                    await target(False)
                    await wait_daemon(daemon, partial(on_backup, flushed=mx_up),
                                      f"cycle {n}: backup, MX checked"
                                      + (" and flushed" if mx_up else " (sshd down)"),
                                      STEP_TIMEOUT)
                    if mx_up:
                        mx_ok += 1
                        await sshd.pause()
                    await target(True)
                    await wait_daemon(daemon, quiet, f"cycle {n}: primary, link up",
                                      STEP_TIMEOUT)
                    # the emulator's record of every line it was sent (for tests to
                    # read; ~34 lines a cycle) is the bench's, not the daemon's memory
                    router.received.clear()
                    if n in (warmup, cycles) or n % every == 0:
                        samples.append(sample(n, t0))
                        progress(str(samples[-1]))
                assert daemon.ctx is not None
                failovers = daemon.store.data.failovers
                failbacks = daemon.store.data.failbacks
            saved = str(router.saved)
    warm = next((s for s in samples if s.cycle >= warmup), samples[0])
    last = samples[-1]
    after = last.cycle - warm.cycle
    growth = {"rss_mb": round(per_1000(warm.rss_kb, last.rss_kb, after) / 1024, 3),
              "fds": round(per_1000(warm.fds, last.fds, after), 2),
              "tasks": round(per_1000(warm.tasks, last.tasks, after), 2)}
    targets = {
        "rss_mb_per_1000": {"target": f"<= {TARGET_RSS_MB}", "value": growth["rss_mb"],
                            "pass": growth["rss_mb"] <= TARGET_RSS_MB},
        "fds_per_1000": {"target": f"<= {TARGET_FDS}", "value": growth["fds"],
                         "pass": growth["fds"] <= TARGET_FDS},
        "tasks_per_1000": {"target": f"<= {TARGET_TASKS}", "value": growth["tasks"],
                           "pass": growth["tasks"] <= TARGET_TASKS},
    }
    ok = all(t["pass"] for t in targets.values()) and failovers >= cycles
    seconds = last.seconds
    return {
        "bench": "leak", "cycles": cycles, "warmup": warm.cycle, "seconds": seconds,
        "cycle_s": round(seconds / cycles, 3) if cycles else None,
        "daemon_failovers": failovers, "daemon_failbacks": failbacks,
        "mx_every": mx_every, "mx_verified_and_flushed": mx_ok,
        "router_saved_at_end": saved,
        "growth_per_1000_after_warmup": growth,
        "samples": [asdict(s) for s in samples], "targets": targets, "pass": ok,
        "method": ("in-process Daemon (auto failback, hold-down 0), Netopia menu emulator "
                   "'immediate' over telnet, real sshd + private Postfix verified and "
                   "flushed every mx_every-th failover (sshd down, verify refused, in "
                   "between); this process sampled after gc.collect() on the primary with "
                   "nothing in flight; the emulator's record of the lines it received is "
                   "cleared every cycle"),
    }, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--every", type=int, default=100, help="sample every N cycles")
    parser.add_argument("--mx-every", type=int, default=10,
                        help="sshd up (verify + flush) on every N-th cycle, down otherwise")
    args = parser.parse_args()
    if args.cycles < 1 or args.warmup < 0 or args.every < 1 or args.mx_every < 1:
        parser.error("--cycles, --every and --mx-every must be positive, --warmup not "
                     "negative")
    need_root("bench_leak")
    logs_to_stderr()
    def attempt() -> tuple[dict[str, Any], bool]:
        private_netns()
        return asyncio.run(run(args.cycles, min(args.warmup, args.cycles), args.every,
                               args.mx_every))

    return emit_run("leak", attempt, ERRORS)


if __name__ == "__main__":
    sys.exit(main())
