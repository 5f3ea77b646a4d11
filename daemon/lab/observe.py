"""Looking at a running lab from outside: the router's real WAN config, link states, and
whether each circuit and the tunnel carry traffic right now (what `lab status` prints)."""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from router_drivers import WanConfig

from . import netns
from .topology import CIRCUITS, PRIMARY, TARGETS, TUNNEL_REMOTE, Topology

# Bounds each reachability check: one echo request, this long for the reply.
STATUS_PING_WAIT = 1.0


async def read_wan(topo: Topology) -> WanConfig | None:
    """The router namespace's actual WAN address and default gateway, if it has both."""
    router = topo.ns("router")
    addrs = json.loads((await netns.run(
        ["ip", "-n", router, "-j", "-4", "addr", "show", "dev", "wan0"])).stdout or "[]")
    routes = json.loads((await netns.run(
        ["ip", "-n", router, "-j", "-4", "route", "show", "default"])).stdout or "[]")
    infos = [i for a in addrs for i in a.get("addr_info", [])]
    gateways = [r["gateway"] for r in routes if "gateway" in r]
    if not infos or not gateways:
        return None
    iface = IPv4Interface(f"{infos[0]['local']}/{infos[0]['prefixlen']}")
    return WanConfig(iface.ip, iface.netmask, IPv4Address(gateways[0]))


async def link_up(ns: str, iface: str) -> bool:
    result = await netns.run(["ip", "-n", ns, "-j", "link", "show", iface], check=False)
    if result.returncode != 0:
        return False
    links = json.loads(result.stdout or "[]")
    return bool(links) and "UP" in links[0].get("flags", [])


async def reaches(ns: str, address: IPv4Address) -> bool:
    count = await netns.ping(ns, str(address), wait=STATUS_PING_WAIT)
    return count.received > 0


async def network_status(topo: Topology, loss_percent: int) -> dict[str, Any]:
    """Router WAN, each circuit's link and whether it works, and the tunnel."""
    wan = await read_wan(topo)
    on = next((n for n, c in CIRCUITS.items() if wan == c.wan), None)
    internet, tunnel, link1, link2 = await asyncio.gather(
        reaches(topo.ns("inside"), TARGETS[0]),
        reaches(topo.ns("router"), TUNNEL_REMOTE.ip),
        link_up(topo.ns("isp1"), "wan0"), link_up(topo.ns("isp2"), "wan0"))
    circuits = {
        name: {"link": "up" if link else "down", "active": on == name,
               "works": bool(link and on == name and internet),
               **({"loss_percent": loss_percent} if c is PRIMARY else {})}
        for (name, c), link in zip(CIRCUITS.items(), (link1, link2), strict=True)}
    return {"wan": {**(wan.as_dict() if wan else {}), "circuit": on or "unknown"},
            "circuits": circuits, "internet_from_inside": internet,
            "tunnel": {"works": tunnel}}
