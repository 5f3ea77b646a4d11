"""ICMP loss on the primary path (an nftables numgen rule; this kernel has no netem)."""

from __future__ import annotations

import pytest

from daemon.lab import netns
from daemon.lab.site import Lab
from daemon.lab.topology import PRIMARY, TARGETS

pytestmark = pytest.mark.root

PINGS = 300


async def test_twenty_percent_loss_drops_about_a_fifth_of_pings(lab: Lab) -> None:
    await lab.set_loss(20)
    count = await netns.ping(lab.ns("inside"), str(TARGETS[0]), count=PINGS, interval=0.002,
                             wait=0.5)
    assert count.sent == PINGS
    # expected 60 lost, sd ~7: the bound is about +-4.5 sd, far from 0 and from 100 %
    assert 0.10 <= count.loss <= 0.30, count


async def test_loss_also_hits_pings_to_the_isp1_gateway(lab: Lab) -> None:
    await lab.set_loss(100)
    count = await netns.ping(lab.ns("inside"), str(PRIMARY.gateway.ip), count=5,
                             interval=0.01, wait=0.3)
    assert count.received == 0


async def test_zero_loss_clears_the_drop_rule(lab: Lab) -> None:
    await lab.set_loss(100)
    await lab.set_loss(0)
    count = await netns.ping(lab.ns("inside"), str(TARGETS[1]), count=20, interval=0.002,
                             wait=0.5)
    assert count.received == 20


async def test_loss_does_not_touch_the_backup_circuit(lab: Lab) -> None:
    await lab.set_loss(100)
    await lab.set_wan("backup")
    count = await netns.ping(lab.ns("inside"), str(TARGETS[2]), count=20, interval=0.002,
                             wait=0.5)
    assert count.received == 20


async def test_status_reports_the_loss_that_was_set(lab: Lab) -> None:
    await lab.set_loss(20)
    assert (await lab.status())["circuits"]["primary"]["loss_percent"] == 20
