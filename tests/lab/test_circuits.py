"""The two circuits: the inside host reaches the internet only through the active one."""

from __future__ import annotations

import pytest

from daemon.lab import netns
from daemon.lab.site import Lab
from daemon.lab.topology import PRIMARY, TARGETS

pytestmark = pytest.mark.root


async def _reachable(lab: Lab, address: str) -> bool:
    count = await netns.ping(lab.ns("inside"), address, count=1, wait=1.0)
    return count.received == 1


async def test_inside_reaches_every_internet_target_on_the_primary_circuit(lab: Lab) -> None:
    for target in TARGETS:
        assert await _reachable(lab, str(target)), target


async def test_inside_reaches_the_isp1_gateway_on_the_primary_circuit(lab: Lab) -> None:
    assert await _reachable(lab, str(PRIMARY.gateway.ip))


async def test_router_starts_addressed_for_the_primary_circuit(lab: Lab) -> None:
    assert await lab.read_wan() == PRIMARY.wan


async def test_cut_stops_the_inside_reaching_the_internet(lab: Lab) -> None:
    await lab.cut()
    assert not await _reachable(lab, str(TARGETS[0]))


async def test_the_backup_circuit_alone_does_not_help_while_the_router_is_on_primary(
        lab: Lab) -> None:
    await lab.cut()
    status = await lab.status()
    assert status["circuits"]["backup"]["link"] == "up"
    assert not status["internet_from_inside"]


async def test_moving_the_router_wan_to_backup_restores_the_internet_after_a_cut(
        lab: Lab) -> None:
    await lab.cut()
    # by hand with `ip` in the router namespace, as an admin (or the emulator) would
    await lab.exec("router", ["ip", "addr", "flush", "dev", "wan0"])
    await lab.exec("router", ["ip", "addr", "add", "10.12.0.2/29", "dev", "wan0"])
    await lab.exec("router", ["ip", "route", "replace", "default", "via", "10.12.0.1"])
    for target in TARGETS:
        assert await _reachable(lab, str(target)), target


async def test_backup_address_with_the_primary_gateway_reaches_nothing(lab: Lab) -> None:
    # the WAN addressed for neither circuit: a gateway must be on the WAN's own subnet
    await lab.exec("router", ["ip", "addr", "flush", "dev", "wan0"])
    await lab.exec("router", ["ip", "addr", "add", "10.12.0.2/29", "dev", "wan0"])
    result = await lab.exec("router", ["ip", "route", "replace", "default", "via", "10.11.0.1"],
                            check=False)
    assert result.returncode != 0
    assert not await _reachable(lab, str(TARGETS[0]))


async def test_restore_brings_the_primary_circuit_back(lab: Lab) -> None:
    await lab.cut()
    await lab.restore()
    assert await _reachable(lab, str(TARGETS[0]))


async def test_status_reports_the_active_circuit_working_and_the_tunnel_up(lab: Lab) -> None:
    status = await lab.status()
    assert status["up"] and status["wan"]["circuit"] == "primary"
    assert status["circuits"]["primary"] == {"link": "up", "active": True, "works": True,
                                             "loss_percent": 0}
    assert status["tunnel"] == {"works": True}


async def test_status_after_a_cut_reports_the_primary_link_down_and_the_tunnel_down(
        lab: Lab) -> None:
    await lab.cut()
    status = await lab.status()
    assert status["circuits"]["primary"]["link"] == "down"
    assert not status["circuits"]["primary"]["works"]
    assert status["tunnel"] == {"works": False}


async def test_flap_ends_with_the_primary_circuit_working(lab: Lab) -> None:
    await lab.flap(2, down=0.1, up=0.1)
    assert await _reachable(lab, str(TARGETS[0]))
    assert (await lab.status())["circuits"]["primary"]["link"] == "up"


async def test_addresses_outside_the_lab_are_unroutable_at_its_internet(lab: Lab) -> None:
    # the example config's addresses (and any other) die inside the lab: the lab's
    # "internet" has no default route and no namespace of the lab links to the host
    for outside in ("192.168.7.254", "203.0.113.1", "8.8.8.8"):
        result = await lab.exec("internet", ["ip", "route", "get", outside], check=False)
        assert result.returncode != 0 and "unreachable" in result.stderr.lower(), outside
