"""iproute2 on this host or in a network namespace: read and set one interface's WAN config.

Used by the `linux` driver and by the emulator's namespace backend. Reads use `ip -j`
(JSON), so nothing is scraped from human-oriented text.
"""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from .base import WanConfig
from .errors import RouterConnectError, RouterParseError, RouterRefused, RouterTimeout

# Bounds one `ip` invocation; it talks to the local kernel and returns in milliseconds.
IP_TIMEOUT = 10.0


def ip_argv(netns: str | None, *args: str) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), *args]


async def run_ip(step: str, argv: list[str], timeout: float = IP_TIMEOUT) -> str:
    """Run one `ip` command; a non-zero exit is a refusal naming the step."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise RouterConnectError(step, f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise RouterTimeout(step, f"{' '.join(argv)} did not finish in {timeout}s") from exc
    if proc.returncode != 0:
        raise RouterRefused(step, f"{' '.join(argv)} exited {proc.returncode}",
                            err.decode(errors="replace").strip())
    return out.decode(errors="replace")


def parse_ip_json(iface: str, addr_json: str, route_json: str) -> WanConfig:
    """WAN config from `ip -j -4 addr show dev IF` and `ip -j -4 route show default`."""
    try:
        links: Any = json.loads(addr_json or "[]")
        routes: Any = json.loads(route_json or "[]")
    except json.JSONDecodeError as exc:
        raise RouterParseError("read", f"ip -j printed something that is not JSON: {exc}",
                               addr_json[-300:] + route_json[-300:]) from None
    infos = [a for link in links for a in link.get("addr_info", [])
             if a.get("family") == "inet" and a.get("scope", "global") == "global"]
    if not infos:
        raise RouterParseError("read", f"{iface} has no global IPv4 address", addr_json)
    first = infos[0]
    address = IPv4Address(first["local"])
    netmask = IPv4Network(f"0.0.0.0/{first['prefixlen']}").netmask
    gateways = [r for r in routes if r.get("dst") == "default" and "gateway" in r]
    on_iface = [r for r in gateways if r.get("dev") == iface] or gateways
    if not on_iface:
        raise RouterParseError("read", "no default route with a gateway", route_json)
    return WanConfig(address, netmask, IPv4Address(on_iface[0]["gateway"]))


async def read_wan(iface: str, netns: str | None = None) -> WanConfig:
    addr = await run_ip("read address", ip_argv(netns, "-j", "-4", "addr", "show", "dev", iface))
    route = await run_ip("read routes", ip_argv(netns, "-j", "-4", "route", "show", "default"))
    return parse_ip_json(iface, addr, route)


def apply_commands(iface: str, wan: WanConfig, netns: str | None = None) -> list[list[str]]:
    """Flush the old IPv4 address, add the new one, replace the default route."""
    return [
        ip_argv(netns, "-4", "addr", "flush", "dev", iface),
        ip_argv(netns, "addr", "add", f"{wan.address}/{wan.prefixlen}", "dev", iface),
        ip_argv(netns, "route", "replace", "default", "via", str(wan.gateway), "dev", iface),
    ]


async def apply_wan(iface: str, wan: WanConfig, netns: str | None = None) -> None:
    for argv in apply_commands(iface, wan, netns):
        await run_ip(" ".join(argv[-4:]), argv)
