"""The chaos soak's short version (the bench, tests/bench/bench_chaos.py, runs it for
15 minutes over every kind of fault): the daemon in the lab through a seeded series
of faults, with the soak's invariants checked all along (daemon/lab/chaos*.py).

The kinds here are the ones that test the daemon hardest in a few minutes: a SIGKILL
and a SIGTERM (with the primary cut, so that they may land in the middle of a
failover), the router refusing telnet while the primary is cut, the broker restarted.
"""

from __future__ import annotations

import pytest

from daemon.lab.chaos import FaultKind
from daemon.lab.chaos_run import INVARIANTS, ChaosOptions, ChaosRun
from daemon.lab.site import running_lab

from .conftest import LAB_ROUTER_RESTART

pytestmark = [pytest.mark.root, pytest.mark.slow]

MINUTES = 2.0
# seed 3 over these kinds: SIGKILL 5 s after a cut (in the router's restart wait), the
# broker restarted, SIGTERM 2.9 s after a cut (as the failover starts), a cut, the
# router refusing telnet through a cut
SEED = 3
KINDS: tuple[FaultKind, ...] = ("daemon_kill", "router_refuse", "broker_restart",
                                "daemon_term", "cut")
# Invariants the soak checks that this test does not assert, and why; the bench reports
# them all.
NOT_ASSERTED = {
    # an event emitted in the last moment before a SIGKILL dies in the process's MQTT
    # buffer: whether one does depends on the moment of the kill
    "mqtt_no_gap_at_kill9": "depends on the moment of the SIGKILL",
    # a timing: the bench checks the 5 s (a test waits on conditions, it does not time)
    "state_agrees_within_5s": "a timing, for the bench",
}


async def test_the_daemon_keeps_every_invariant_through_a_seeded_series_of_faults() -> None:
    async with running_lab(console="cli", router_restart=LAB_ROUTER_RESTART) as lab:
        report = await ChaosRun(lab, ChaosOptions(seed=SEED, minutes=MINUTES,
                                                  kinds=KINDS)).run()
    # the soak did what it says: its faults, a move through them, mail sent
    assert report["faults"], report["faults"]
    assert report["router"]["actions_started"].get("apply backup", 0) >= 1, report["router"]
    assert report["mails"]["sent"] > 0, report["mails"]
    unsettled = [e for e in report["episodes"] if not e["settled"]]
    assert not unsettled, unsettled
    asserted = [i for i in INVARIANTS if i not in NOT_ASSERTED]
    broken = [v for v in report["violations"]["details"] if v["invariant"] in asserted]
    assert not broken, broken
