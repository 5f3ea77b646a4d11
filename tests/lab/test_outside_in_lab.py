"""The daemon in the lab and the world outside the office: the backup circuit dying too,
and mail that reaches the backup MX while the router fails back.

Real namespaces, the Netopia emulator restarting to apply, the tunnel re-keyed, a real
Postfix backup MX whose own retry is 300 s away (daemon.lab.postfix.RETRY_DELAY), so
that mail delivered sooner was delivered by the daemon's flush.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from daemon.lab.runner import DaemonInLab
from daemon.lab.site import Lab, running_lab
from tests.harness import wait_polled, wait_until

from .conftest import LAB_ROUTER_RESTART

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Bounds each wait for a state (detection ~3 s, a move ~2 s plus the router's restart).
STATE_TIMEOUT = 40.0 + LAB_ROUTER_RESTART
# Good rounds before a circuit counts as up (the default 20 would only make it slower).
QUICK_UP = 4
# Bounds the wait for the backup circuit's first verdict: QUICK_UP rounds of 0.5 s.
BACKUP_VERDICT_TIMEOUT = 20.0
# What the issue asks: mail sent during `failing_back` arrives this soon after `primary`.
DELIVERED_AFTER_PRIMARY = 10.0
# Bounds the wait for the flush's own log line once the mail it moved has arrived.
FLUSH_LOGGED = 10.0
# A hold-down no test waits for: anything sooner was not the hold-down.
LONG_HOLD_DOWN = 600


# The router's restart in the failback mail test: long enough that the message is sent,
# and deferred by the MX, while the router is away.
SLOW_RESTART = 6.0


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with running_lab(console="cli", router_restart=LAB_ROUTER_RESTART) as lab:
        yield lab


@pytest.fixture
async def slow_lab() -> AsyncIterator[Lab]:
    async with running_lab(console="cli", router_restart=SLOW_RESTART) as lab:
        yield lab


def timeline(daemon: DaemonInLab, since: float) -> list[str]:
    """The audit trail from `since` (wall clock) as lines: seconds, kind, reason."""
    daemon.read()
    lines = []
    for e in daemon.events:
        at = e.get("timestamp")   # ISO 8601, UTC
        stamp = (f"{datetime.fromisoformat(at).timestamp() - since:7.2f}s"
                 if isinstance(at, str) else " " * 8)
        lines.append(f"{stamp}  {e.get('event_kind'):<11} {e.get('event')}")
    return lines


async def on_backup_with_primary_back(lab: Lab, daemon: DaemonInLab) -> None:
    """Fail over, then bring the primary back: the daemon stays on backup (hold-down)."""
    await daemon.start()
    await daemon.wait_state("primary", STATE_TIMEOUT)
    await lab.cut()
    await daemon.wait_state("backup", STATE_TIMEOUT)
    await lab.restore()


async def test_both_circuits_down_alarms_and_tries_the_primary_without_the_hold_down(
        lab: Lab) -> None:
    # (manual mode only raises the alarm: tests/unit/test_machine_outside.py)
    daemon = DaemonInLab(lab, overrides={
        "failback": {"mode": "trial", "hold_down": LONG_HOLD_DOWN,
                     "trial_interval": LONG_HOLD_DOWN},
        "primary": {"up_after": QUICK_UP}})
    began = time.time()
    await on_backup_with_primary_back(lab, daemon)
    status = await daemon.wait(lambda s: s.get("backup_link") == "up",
                               BACKUP_VERDICT_TIMEOUT, "backup_link up")
    assert status["state"] == "backup"
    cut_at = time.monotonic()
    await lab.cut("backup")
    await daemon.wait(lambda s: s.get("backup_link") == "down" or s.get("state") != "backup",
                      STATE_TIMEOUT, "the backup circuit seen down")
    await daemon.wait_state("primary", STATE_TIMEOUT)
    back_after = time.monotonic() - cut_at
    await daemon.stop()
    print("\n".join(["", "timeline (s since the daemon started):", *timeline(daemon, began)]))

    reasons = [(e.get("event_kind"), str(e.get("event"))) for e in daemon.events]
    alarm = next(i for i, (k, r) in enumerate(reasons)
                 if k == "probe_alarm" and r.startswith("both circuits down"))
    move = next(i for i, (k, r) in enumerate(reasons)
                if k == "transition" and r.startswith("both circuits down: trying the primary"))
    assert alarm < move, reasons[alarm:move + 1]
    assert daemon.transitions()[-2:] == [("backup", "failing_back"), ("failing_back", "primary")]
    # far sooner than the hold-down or the next trial
    assert back_after < LONG_HOLD_DOWN / 4, back_after


async def test_mail_sent_while_failing_back_arrives_soon_after_primary(slow_lab: Lab) -> None:
    lab = slow_lab
    daemon = DaemonInLab(lab)
    await on_backup_with_primary_back(lab, daemon)
    answer = await daemon.command("failback", "test: primary restored")
    assert answer["accepted"], answer
    await daemon.wait_state("failing_back", STATE_TIMEOUT)

    async def restarting() -> bool:
        return (await lab.router_state()).get("restarting") is True

    # the router restarts onto the primary: it routes nothing, the MX defers the message
    await wait_polled(restarting, bool, STATE_TIMEOUT, "the router away in its restart",
                      step=0.05)
    await lab.send_to_backup_mx("while failing back")
    await daemon.wait_state("primary", STATE_TIMEOUT + SLOW_RESTART)
    primary_at = time.monotonic()

    def delivered() -> list[dict[str, Any]]:
        return [m for m in lab.sink_messages() if m["subject"] == "while failing back"]

    await wait_until(lambda: bool(delivered()), DELIVERED_AFTER_PRIMARY,
                     "the mail sent during failing_back at our sink", step=0.1)
    took = time.monotonic() - primary_at

    def flushes_after_failback() -> list[dict[str, Any]]:
        daemon.read()
        back = max(i for i, e in enumerate(daemon.events) if e.get("state_to") == "primary")
        return [e for e in daemon.events[back:] if e.get("event_kind") == "action"
                and str(e.get("event")).startswith("backup MX queue flushed")]

    await wait_until(lambda: bool(flushes_after_failback()), FLUSH_LOGGED,
                     "the flush after the failback in the log", step=0.1)
    await daemon.stop()
    print(f"\ndelivered {took:.2f}s after primary")
    # the message had waited on the MX, deferred, until that flush moved it
    assert flushes_after_failback()[0]["deferred_before"] >= 1, timeline(daemon, 0)
