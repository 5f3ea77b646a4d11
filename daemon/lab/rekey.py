"""Re-key the lab's tunnel after the router's WAN address changed (the emulator's apply hook).

On the real site the router re-establishes its IPsec tunnel from its new WAN address.
In the lab the router emulator runs this after each apply
(`--apply-command '<python> -m daemon.lab.rekey --router-ns R --remote-ns M {address}'`):
it recreates both ends of the tunnel between the router's new WAN address and the
remote's public address. Until it has run, the old tunnel carries nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from collections.abc import Sequence
from ipaddress import IPv4Address

from .netns import LabError, ip_batch, run
from .topology import REMOTE_PUBLIC, Topology, tunnel_lines


async def tunnel_endpoints(ns: str) -> tuple[str, str] | None:
    """(local, remote) underlay addresses of the tunnel device in `ns`, if it exists."""
    result = await run(["ip", "-n", ns, "-j", "-d", "link", "show", "tun0"], check=False)
    if result.returncode != 0:
        return None
    try:
        info = json.loads(result.stdout)[0]["linkinfo"]["info_data"]
        return str(info["local"]), str(info["remote"])
    except (ValueError, LookupError, TypeError) as exc:
        raise LabError(f"ip -n {ns} link show tun0: unexpected output: {exc}") from exc


async def rekey(router_ns: str, remote_ns: str, local: IPv4Address,
                remote_public: IPv4Address = REMOTE_PUBLIC.ip) -> bool:
    """Recreate both tunnel ends: router `local` <-> remote `remote_public`.

    Returns False (and touches nothing) when both ends are already keyed to these
    addresses: applying the config the router already has must not drop the tunnel.
    """
    wanted = ((str(local), str(remote_public)), (str(remote_public), str(local)))
    current = await asyncio.gather(tunnel_endpoints(router_ns), tunnel_endpoints(remote_ns))
    if tuple(current) == wanted:
        return False
    # Deleting a device that is not there is fine (first key, or a half-done earlier run).
    await asyncio.gather(run(["ip", "-n", router_ns, "link", "del", "tun0"], check=False),
                         run(["ip", "-n", remote_ns, "link", "del", "tun0"], check=False))
    await asyncio.gather(
        ip_batch(router_ns, tunnel_lines(local, remote_public, "router")),
        ip_batch(remote_ns, tunnel_lines(remote_public, local, "remote")))
    return True


def rekey_command(topo: Topology, python: str = sys.executable) -> str:
    """The emulator's `--apply-command` template for this lab ({address} is filled in)."""
    return " ".join([shlex.quote(python), "-m", "daemon.lab.rekey",
                     "--router-ns", topo.ns("router"), "--remote-ns", topo.ns("remote"),
                     "{address}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.lab.rekey",
        description="Recreate the lab tunnel from the router's new WAN address.")
    parser.add_argument("--router-ns", required=True)
    parser.add_argument("--remote-ns", required=True)
    parser.add_argument("--remote-public", type=IPv4Address, default=REMOTE_PUBLIC.ip)
    parser.add_argument("address", type=IPv4Address, help="the router's new WAN address")
    # the emulator may pass netmask, gateway and prefix length too; the tunnel needs none
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        asyncio.run(rekey(args.router_ns, args.remote_ns, args.address, args.remote_public))
    except LabError as exc:
        print(f"rekey: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
