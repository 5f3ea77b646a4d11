"""What the bench scripts share: progress on stderr, one JSON object on stdout, the root
check, percentiles, the daemon's audit events with their own timestamps, and a lab with
the daemon running and settled (state `primary`, primary link `up`)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

# `until` and `epoch` live in daemon/lab; the bench scripts import them from here
from daemon.control import ControlError
from daemon.lab.netns import LabError
from daemon.lab.poll import until as until
from daemon.lab.runner import DaemonInLab
from daemon.lab.runner import epoch as epoch
from daemon.lab.site import DEFAULT_ROUTER_RESTART, Lab, new_lab_id

# What one step of a bench (a cut, a recovery) may raise that the bench reports and
# goes on from (or stops at): a wait that timed out, a lab or control socket failure.
STEP_ERRORS: tuple[type[Exception], ...] = (TimeoutError, RuntimeError, LabError, ControlError)
# What a whole bench run may raise that is reported as a failed result: those, and an
# OS error (a lab that could not be built).
RUN_ERRORS: tuple[type[Exception], ...] = (*STEP_ERRORS, OSError)

# Bounds the lab's bring-up plus the daemon's start until it is on the primary with the
# primary link declared up (up_after = 20 rounds of 0.5 s alone take 10 s).
SETTLE_TIMEOUT = 90.0

T0 = time.time()


def progress(text: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {text}", file=sys.stderr, flush=True)


def emit(result: Mapping[str, Any]) -> None:
    print(json.dumps(result, indent=2, default=str), flush=True)


def emit_run(bench: str, attempt: Callable[[], tuple[dict[str, Any], bool]],
             errors: tuple[type[Exception], ...]) -> int:
    """Run `attempt` (result, passed), print its JSON and return the exit code; one of
    `errors` is a failed run with its error in the JSON."""
    try:
        result, ok = attempt()
    except errors as exc:
        emit({"bench": bench, "pass": False, "errors": [f"{type(exc).__name__}: {exc}"]})
        return 1
    emit(result)
    return 0 if ok else 1


def need_root(name: str) -> None:
    if os.geteuid() != 0:
        print(f"{name}: needs root (it creates network namespaces)", file=sys.stderr)
        raise SystemExit(77)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def stats(values: Sequence[float]) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)
    return {"n": len(values), "median": r(percentile(values, 50)),
            "p95": r(percentile(values, 95)), "max": r(max(values) if values else None)}


def transitions_since(daemon: DaemonInLab, seq: int, src: str, dst: str) -> list[float]:
    """Timestamps of `src -> dst` transitions audited after `seq`."""
    daemon.read()
    return [t for e in daemon.events
            if e.get("event_kind") == "transition" and int(e.get("seq") or 0) > seq
            and e.get("state_from") == src and e.get("state_to") == dst
            and (t := epoch(e.get("timestamp"))) is not None]


def last_seq(daemon: DaemonInLab) -> int:
    daemon.read()
    return max((int(e.get("seq") or 0) for e in daemon.events), default=0)


async def settled(daemon: DaemonInLab, timeout: float) -> None:
    """On the primary with the primary link declared up (the monitor needs up_after
    good rounds after every move of the router)."""
    await daemon.wait(lambda s: s.get("state") == "primary" and s.get("primary_link") == "up",
                      timeout, "state primary with primary_link up")


@asynccontextmanager
async def lab_with_daemon(console: str = "cli",
                          overrides: Mapping[str, Mapping[str, Any]] | None = None,
                          router_restart: float = DEFAULT_ROUTER_RESTART,
                          ) -> AsyncIterator[tuple[Lab, DaemonInLab]]:
    """A fresh lab and the daemon in it, settled; both gone afterwards whatever happens.
    The lab's router restarts to apply a change and is away `router_restart` seconds."""
    lab = Lab(new_lab_id(), console=console, router_restart=router_restart)
    daemon: DaemonInLab | None = None
    try:
        progress(f"lab {lab.lab_id}: bringing it up (console {console}, router restart "
                 f"{router_restart:g}s)")
        await lab.up()
        daemon = DaemonInLab(lab, overrides=overrides)
        await daemon.start()
        progress("daemon started; waiting for primary with the link up")
        await settled(daemon, SETTLE_TIMEOUT)
        yield lab, daemon
    finally:
        if daemon is not None:
            try:
                await asyncio.shield(daemon.stop())
            except Exception as exc:  # the lab's down() below kills it anyway
                progress(f"daemon stop: {type(exc).__name__}: {exc}")
        removed = await asyncio.shield(lab.down())
        progress(f"lab {lab.lab_id} torn down ({len(removed)} things removed)")
