"""SIGTERM at any moment: `dslfailover run` exits 0, says `offline`, leaves the router whole.

The daemon runs as a process (harness.daemon_process) against a Netopia CLI emulator that
restarts to apply (this test's event loop) and the real mosquitto (tests/conftest.py's
broker). Each round starts it, brings it to a phase (start-up, primary, failing_over,
backup, failing_back; the moves by operator command), waits a seeded random moment and
sends SIGTERM. Then: exit code 0; the broker's retained availability is `offline` once the
daemon had connected (and never `online`); the router's saved and running config agree
(an apply in flight was finished, README "Stopping"). How long the stops take, per phase:
tests/bench/bench_stop.py (which runs these rounds too).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.lab.mosquitto import Mosquitto
from router_drivers import WanConfig
from router_drivers.emulator import EmulatorOptions, RouterState, run_emulator
from tests.harness import (
    BACKUP,
    PRIMARY,
    DaemonProcess,
    daemon_config,
    daemon_process,
    finished,
    secret_file,
    wait_until,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

PASSWORD = "stop-pw"
SITE = "stop"
# How long the emulated router is away in a restart: a failover or failback lasts about
# this long, so a random moment inside it falls inside the router dialogue.
RESTART_DELAY = 1.0
# The daemon's router bounds in these rounds; the grace on stop is ACTION_TIMEOUT.
ACTION_TIMEOUT = 15.0
# A generous "it exits at all" guard: the grace, MQTT's goodbye, start-up on a busy box.
# (How fast it stops is the bench's business.)
EXIT_GUARD = ACTION_TIMEOUT + 15.0
# Bounds one wait for a phase (a state, the signal handler being in place).
PHASE_TIMEOUT = 30.0
# Bounds reading the broker's retained availability.
RETAINED_TIMEOUT = 10.0
ROUNDS_PER_PHASE = 6  # x 5 phases = 30 rounds
SEED = 11


class Phase(enum.Enum):
    STARTUP = "startup"            # from the moment the process catches SIGTERM
    PRIMARY = "primary"
    FAILING_OVER = "failing_over"  # the failover's router dialogue (restart included)
    BACKUP = "backup"
    FAILING_BACK = "failing_back"


# where the router is before the round, and the random moment's range (seconds)
SETUP: dict[Phase, tuple[WanConfig, float]] = {
    Phase.STARTUP: (PRIMARY, 1.5), Phase.PRIMARY: (PRIMARY, 0.5),
    Phase.FAILING_OVER: (PRIMARY, RESTART_DELAY + 0.3), Phase.BACKUP: (PRIMARY, 0.5),
    Phase.FAILING_BACK: (BACKUP, RESTART_DELAY + 0.3),
}


@dataclass(frozen=True)
class StopSite:
    router: RouterState
    broker: Mosquitto
    config: Path
    tmp: Path


@dataclass(frozen=True)
class Stopped:
    """One round: the phase, the random moment, the exit code, how long the stop took."""

    phase: Phase
    delay: float
    code: int
    seconds: float
    connected: bool          # the daemon had a session with the broker
    availability: str | None  # the broker's retained availability afterwards
    handler_s: float | None   # start-up: from the process's start to its SIGTERM handler


@contextlib.asynccontextmanager
async def stop_site(tmp: Path, broker: Mosquitto) -> AsyncIterator[StopSite]:
    """The emulator (restart to apply) and the config of a daemon that uses it and MQTT."""
    options = EmulatorOptions(password=PASSWORD, restart_delay=RESTART_DELAY)
    async with run_emulator("cli", PRIMARY, options=options) as (_, port, state):
        secret_file(tmp / "router.password", PASSWORD)
        config = daemon_config(
            tmp, site=SITE, log={"format": "json"},
            router={"driver": "netopia-cli", "host": "127.0.0.1", "port": port,
                    "password_file": "router.password", "connect_timeout": 2.0,
                    "step_timeout": 5.0, "restart_timeout": 10.0,
                    "action_timeout": ACTION_TIMEOUT},
            mqtt={"enabled": None, "host": broker.host, "port": broker.port})
        yield StopSite(state, broker, config, tmp)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (SigCgt in /proc/PID/status)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(int(line.split()[1], 16) for line in text.splitlines()
                  if line.startswith("SigCgt:"))
    return bool(caught & (1 << (signal.SIGTERM - 1)))


async def retained_availability(site: StopSite) -> str | None:
    """The broker's retained `<prefix>/availability`, None when it holds none."""
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-h", site.broker.host, "-p", str(site.broker.port),
        "-t", f"dslfailover/{SITE}/availability", "-C", "1", "-W", "2", "--retained-only",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, out, _ = await finished(proc, RETAINED_TIMEOUT)
    return out.strip() or None if code == 0 else None


async def reach(daemon: DaemonProcess, phase: Phase) -> None:
    """Bring the daemon to the start of `phase`."""
    if phase == Phase.STARTUP:
        await wait_until(lambda: catches_sigterm(daemon.proc.pid), PHASE_TIMEOUT,
                         "the daemon's SIGTERM handler")
        return
    start = "backup" if phase == Phase.FAILING_BACK else "primary"
    await daemon.wait_state(start, timeout=PHASE_TIMEOUT)
    if phase in (Phase.FAILING_OVER, Phase.BACKUP):
        assert (await daemon.command("failover", "stop test"))["accepted"]
        if phase == Phase.BACKUP:
            await daemon.wait_state("backup", timeout=PHASE_TIMEOUT)
    elif phase == Phase.FAILING_BACK:
        assert (await daemon.command("failback", "stop test"))["accepted"]


async def stop_round(site: StopSite, phase: Phase, rng: random.Random, n: int) -> Stopped:
    """One round: the router set up for `phase`, the daemon brought there, a random
    moment, SIGTERM; its exit code and how long it took to go."""
    wan, spread = SETUP[phase]
    site.router.saved = site.router.running = wan
    delay = rng.uniform(0.0, spread)
    log = site.tmp / f"daemon-{n}-{phase.value}.log"
    spawned = time.monotonic()
    with daemon_process(site.config, log=log) as daemon:
        await reach(daemon, phase)
        handler_s = time.monotonic() - spawned if phase == Phase.STARTUP else None
        await asyncio.sleep(delay)   # the random moment (not an ordering: any moment will do)
        began = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        # the emulator lives in this loop: wait in a thread, so it keeps answering
        code = await asyncio.to_thread(daemon.proc.wait, EXIT_GUARD)
        seconds = time.monotonic() - began
    return Stopped(phase, delay, code, seconds, "mqtt_connected" in log.read_text(),
                   await retained_availability(site), handler_s)


def problems(site: StopSite, r: Stopped) -> list[str]:
    """What is wrong after a round (empty: nothing)."""
    found = []
    if r.code != 0:
        found.append(f"exit {r.code}")
    if r.availability == "online" or (r.connected and r.availability != "offline"):
        found.append(f"retained availability {r.availability!r} after a clean stop")
    if site.router.saved != site.router.runs or site.router.restarting:
        found.append(f"router saved {site.router.saved}, running {site.router.runs}")
    return found


async def test_sigterm_at_any_moment_exits_0_offline_and_the_router_whole(
        tmp_path: Path, broker: Mosquitto) -> None:
    rng = random.Random(SEED)
    bad: list[str] = []
    async with stop_site(tmp_path, broker) as site:
        for n, phase in enumerate(p for p in Phase for _ in range(ROUNDS_PER_PHASE)):
            r = await stop_round(site, phase, rng, n)
            bad += [f"round {n} ({phase.value}, +{r.delay:.2f}s): {p}"
                    for p in problems(site, r)]
    assert not bad, "\n".join(bad)
