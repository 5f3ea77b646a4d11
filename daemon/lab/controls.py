"""What tests, the demo and the operator change in a running lab: the primary circuit cut,
restored, lossy (both ways or replies only) or flapping; the router's WAN addressed by
hand; the tunnel re-keyed; a message sent to the backup MX as the internet would; and,
for the chaos soak, the router emulator's state and faults and the broker or the backup
MX's sshd taken down (over the control sockets of the emulator and the services).

`CircuitControls` is a part of `Lab` (site.py); each control keeps what it set in the
lab's state file, which `lab status` shows.
"""

from __future__ import annotations

import asyncio
import sys
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

from router_drivers import WanConfig

from ..control import request
from . import netns, observe
from .rekey import rekey
from .statefile import StateFile
from .topology import (
    CIRCUITS,
    MAIL_DOMAIN,
    MX_ADDR,
    ROUTER_CONTROL,
    SERVICES_CONTROL,
    CircuitName,
    Topology,
    wan_lines,
)

# Bounds one SMTP step (connect, banner, each reply) of `send_to_backup_mx()`.
SEND_TIMEOUT = 5.0
# Bounds one request to the emulator's or the services' control socket (the broker's
# start takes well under a second; sshd's a little more).
LAB_CONTROL_TIMEOUT = 15.0

# Run in the remote namespace: one message to the backup MX's SMTP port.
_SEND = """
import smtplib, sys
host, rcpt, subject, timeout = sys.argv[1:5]
with smtplib.SMTP(host, 25, timeout=float(timeout)) as smtp:
    smtp.sendmail("sender@remote.test", [rcpt],
                  "Subject: %s\\r\\n\\r\\nfrom the lab\\r\\n" % subject)
"""


_ISP: dict[CircuitName, str] = {"primary": "isp1", "backup": "isp2"}
# the lab's state file: `cut` is the primary's (as it always was), `cut_backup` the backup's
_CUT_KEY: dict[CircuitName, str] = {"primary": "cut", "backup": "cut_backup"}


class CircuitControls:
    """The lab's circuit controls; `Lab` provides the topology and the state file."""

    topo: Topology
    record: StateFile
    dir: Path

    async def cut(self, circuit: CircuitName = "primary") -> None:
        """A circuit dies: its ISP's link to the WAN segment goes down (isp1 for the
        primary, isp2 for the backup)."""
        await netns.ip_batch(self.topo.ns(_ISP[circuit]), ["link set wan0 down"])
        self.record.update(**{_CUT_KEY[circuit]: True})

    async def restore(self, circuit: CircuitName = "primary") -> None:
        """A circuit comes back."""
        await netns.ip_batch(self.topo.ns(_ISP[circuit]), ["link set wan0 up"])
        self.record.update(**{_CUT_KEY[circuit]: False})

    async def set_loss(self, percent: int) -> None:
        """Drop `percent` % of ICMP on the primary path (0 clears)."""
        await netns.nft_apply(self.topo.ns("isp1"), self.topo.loss_ruleset(percent))
        self.record.update(loss=percent)

    async def set_reply_loss(self, percent: int) -> None:
        """Drop `percent` % of the echo replies coming back on the primary path (0 clears)."""
        await netns.nft_apply(self.topo.ns("isp1"), self.topo.reply_loss_ruleset(percent))
        self.record.update(reply_loss=percent)

    async def router_state(self) -> dict[str, Any]:
        """What the router emulator saved and runs, its counters (`RouterState.observed`)."""
        answer = await request(self.dir / ROUTER_CONTROL, {"op": "state"},
                               timeout=LAB_CONTROL_TIMEOUT)
        return dict(answer["state"])

    async def router_fault(self, *, refuse: bool | None = None, hang: bool | None = None,
                           restart_delay: float | None = None) -> dict[str, Any]:
        """Make the router's telnet refuse or hang, or its restarts take `restart_delay`
        seconds (None: leave as it is); returns its state after the change."""
        change = {k: v for k, v in (("refuse", refuse), ("hang", hang),
                                    ("restart_delay", restart_delay)) if v is not None}
        answer = await request(self.dir / ROUTER_CONTROL, {"op": "fault", **change},
                               timeout=LAB_CONTROL_TIMEOUT)
        if not answer.get("ok"):
            raise netns.LabError(f"router fault {change}: {answer.get('error')}")
        return dict(answer["state"])

    async def set_service(self, name: Literal["broker", "sshd"], up: bool) -> None:
        """Take the broker or the backup MX's sshd down, or bring it back (same port, same
        keys; the broker keeps its persistent sessions and retained messages)."""
        answer = await request(self.dir / SERVICES_CONTROL, {"op": name, "up": up},
                               timeout=LAB_CONTROL_TIMEOUT)
        if not answer.get("ok"):
            raise netns.LabError(f"{name} {'up' if up else 'down'}: {answer.get('error')}")

    async def set_wan(self, circuit: CircuitName, *, rekey_tunnel: bool = True) -> None:
        """Address the router's WAN for a circuit by hand (what the emulator does on apply).

        With `rekey_tunnel` the tunnel is re-keyed from the new address, as the emulator's
        apply hook does; without it the tunnel stays bound to the old address.
        """
        wan = CIRCUITS[circuit].wan
        await netns.ip_batch(self.topo.ns("router"), wan_lines(wan))
        if rekey_tunnel:
            await self.rekey(wan.address)
        self.record.update(wan=circuit)

    async def rekey(self, local: IPv4Address) -> bool:
        """Re-key the tunnel from the router's WAN address `local` (False: already was)."""
        return await rekey(self.topo.ns("router"), self.topo.ns("remote"), local)

    async def read_wan(self) -> WanConfig | None:
        """The router namespace's actual WAN address and default gateway, if it has both."""
        return await observe.read_wan(self.topo)

    async def flap(self, times: int, down: float, up: float) -> None:
        """Cut and restore the primary `times` times: `down` seconds cut, `up` restored."""
        for i in range(times):
            await self.cut()
            await asyncio.sleep(down)
            await self.restore()
            if i + 1 < times:
                await asyncio.sleep(up)

    async def send_to_backup_mx(self, subject: str, *, rcpt: str = f"user@{MAIL_DOMAIN}",
                                timeout: float = SEND_TIMEOUT) -> None:
        """Send one message to the backup MX from the customer's network (as the internet
        would); it reaches our sink only when the tunnel works (see `sink_messages()`)."""
        await netns.run(netns.in_netns(self.topo.ns("remote"), [
            sys.executable, "-c", _SEND, str(MX_ADDR), rcpt, subject, f"{timeout:g}"]),
            timeout=timeout * 3)
