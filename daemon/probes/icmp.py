"""ICMP echo through icmplib's async API (after Home Assistant's ping helpers).

Privileges are decided once at start-up (`choose_privileged`): raw sockets when we have
CAP_NET_RAW, unprivileged ping sockets when `net.ipv4.ping_group_range` admits our group,
else a clear error naming both. Only the errors that mean "no answer" are caught.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import icmplib


class ProbeSetupError(Exception):
    """ICMP cannot be used at all on this host (privileges, bad source address)."""


@dataclass(frozen=True, slots=True)
class EchoResult:
    target: str
    ok: bool
    rtt_ms: float | None
    error: str | None = None


def _ping_groups_allow_us() -> bool:
    try:
        low, high = Path("/proc/sys/net/ipv4/ping_group_range").read_text().split()
    except (OSError, ValueError):
        return False
    groups = {os.getgid(), *os.getgroups()}
    return any(int(low) <= g <= int(high) for g in groups)


def choose_privileged(setting: str) -> bool:
    """True for raw sockets, False for ping sockets; raises when neither can work."""
    if setting == "yes":
        return True
    if setting == "no":
        if not _ping_groups_allow_us():
            raise ProbeSetupError(
                "unprivileged ICMP is not allowed: net.ipv4.ping_group_range does not "
                "include our group (set it, or allow raw sockets with CAP_NET_RAW)")
        return False
    try:
        icmplib.ICMPv4Socket(privileged=True).close()
        return True
    except icmplib.SocketPermissionError:
        pass
    if _ping_groups_allow_us():
        return False
    raise ProbeSetupError(
        "cannot send ICMP: no CAP_NET_RAW for raw sockets and net.ipv4.ping_group_range "
        "does not include our group; grant CAP_NET_RAW (the systemd unit does: "
        "AmbientCapabilities=CAP_NET_RAW) or widen net.ipv4.ping_group_range")


async def echo(target: IPv4Address | str, *, timeout: float, privileged: bool,
               source: IPv4Address | None = None) -> EchoResult:
    """One echo request; `timeout` bounds the wait for the reply."""
    addr = str(target)
    try:
        host = await icmplib.async_ping(
            addr, count=1, timeout=timeout, privileged=privileged,
            source=str(source) if source else None)
    except icmplib.SocketAddressError as exc:
        raise ProbeSetupError(f"cannot use source address {source}: {exc}") from exc
    except (icmplib.NameLookupError, icmplib.ICMPSocketError) as exc:
        # e.g. "network unreachable" while the router's WAN is down: no answer
        return EchoResult(addr, False, None, f"{type(exc).__name__}: {exc}")
    if host.is_alive:
        return EchoResult(addr, True, float(host.avg_rtt))
    return EchoResult(addr, False, None, "no reply")


async def echo_all(targets: list[IPv4Address], *, timeout: float, privileged: bool,
                   source: IPv4Address | None = None) -> tuple[EchoResult, ...]:
    """All targets at once, so one slow target never delays the others."""
    results = await asyncio.gather(
        *(echo(t, timeout=timeout, privileged=privileged, source=source) for t in targets))
    return tuple(results)
