"""The lab's plan as plain data: namespaces, links, addresses, and the commands that build them.

Nothing here touches the system: `Topology` turns a lab id into namespace names and
renders the `ip -batch` lines and nftables rulesets that `site.Lab` runs. That keeps the
plan readable in one place and checkable without root (names fit IFNAMSIZ); the daemon
config built from it (`labconfig.py`) validates.

The site, all in 10.x ranges that exist only inside the lab's namespaces (none of them
is linked to the root namespace, so nothing can leave):

    inside  10.1.0.10/24        daemon, sink :25 (our mail server), mosquitto 127.0.0.1:1883
      | lan0
    router  10.1.0.1/24         Netopia emulator :23; NAT out of wan0; pinhole
      | wan0                    10.250.0.254:25 -> 10.1.0.10:25; tun0 10.250.0.254/24
    wan     bridge br0          the Ethernet segment shared with both DSL modems
      |-- isp1  10.11.0.1/29    primary: router 10.11.0.2; cut = isp1's wan0 down;
      |                         ICMP loss = nftables numgen drop on what enters from wan0
      |-- isp2  10.12.0.1/29    backup: router 10.12.0.2
    internet                    targets 10.30.0.1-3 (on lo); routes to both ISP subnets
      |
    remote  10.40.0.2/30        public address; backup MX 10.50.0.25 (sshd :22, Postfix :25)
                                tun0 10.250.0.1/24, routes 10.1.0.0/24 through the tunnel

The tunnel is a vxlan pair between the router's current WAN address and 10.40.0.2: it
carries traffic only while the router's WAN is up on some circuit *and* the tunnel was
re-keyed from that address (`rekey.py`, the emulator's apply hook), as IPsec would.
The router is addressed for one circuit at a time (10.11.0.2 via 10.11.0.1, or 10.12.0.2
via 10.12.0.1); the ISP gateways only route their own subnet, so a circuit works only
while the router's WAN is addressed for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from router_drivers import WanConfig

NS_PREFIX = "dslf-"
DEFAULT_ID = "lab"
# How long the lab's router is away when it restarts to apply a saved change (its
# emulator's --restart-delay): a plausible real figure. Tests and the demo pass less.
DEFAULT_ROUTER_RESTART = 20.0
ROLES = ("inside", "router", "wan", "isp1", "isp2", "internet", "remote")
_LAB_ID = re.compile(r"^[a-z0-9]{1,10}$")
IFNAMSIZ = 15  # the kernel's limit on interface names (16 bytes with the NUL)

CircuitName = Literal["primary", "backup"]

# Addresses (all private, all inside the lab's namespaces).
LAN = IPv4Network("10.1.0.0/24")
INSIDE_ADDR = IPv4Address("10.1.0.10")
ROUTER_LAN_ADDR = IPv4Address("10.1.0.1")
TARGETS = (IPv4Address("10.30.0.1"), IPv4Address("10.30.0.2"), IPv4Address("10.30.0.3"))
REMOTE_PUBLIC = IPv4Interface("10.40.0.2/30")
REMOTE_UPLINK_GW = IPv4Interface("10.40.0.1/30")
MX_NET = IPv4Network("10.50.0.0/24")
MX_ADDR = IPv4Address("10.50.0.25")
# The router's end of the tunnel: what the customer's Postfix sends our mail to.
TUNNEL_ROUTER = IPv4Interface("10.250.0.254/24")
TUNNEL_REMOTE = IPv4Interface("10.250.0.1/24")
VXLAN_ID = 42
VXLAN_PORT = 4789
MAIL_DOMAIN = "lab.test"
ROUTER_TELNET_PORT = 23
MQTT_PORT = 1883
SSH_PORT = 22
SERVICES_FILE = "services.json"   # in the lab dir: what the services process started
SINK_LOG = "sink.jsonl"           # in the lab dir: one line per message our sink accepted
ROUTER_CONTROL = "router.sock"     # in the lab dir: the emulator's control socket
SERVICES_CONTROL = "services.sock"  # in the lab dir: the services' (broker, sshd up/down)


@dataclass(frozen=True, slots=True)
class Circuit:
    """One DSL circuit: its ISP gateway's namespace role and its WAN subnet."""

    name: CircuitName
    isp: str                      # namespace role of the ISP gateway
    gateway: IPv4Interface        # the ISP gateway on the WAN segment
    router: IPv4Address           # the router's WAN address on this circuit
    uplink: IPv4Interface         # the ISP's side of its link to `internet`
    uplink_peer: IPv4Interface    # the internet's side of that link

    @property
    def subnet(self) -> IPv4Network:
        return self.gateway.network

    @property
    def wan(self) -> WanConfig:
        return WanConfig(self.router, self.gateway.netmask, self.gateway.ip)


PRIMARY = Circuit("primary", "isp1", IPv4Interface("10.11.0.1/29"), IPv4Address("10.11.0.2"),
                  IPv4Interface("10.21.0.1/30"), IPv4Interface("10.21.0.2/30"))
BACKUP = Circuit("backup", "isp2", IPv4Interface("10.12.0.1/29"), IPv4Address("10.12.0.2"),
                 IPv4Interface("10.22.0.1/30"), IPv4Interface("10.22.0.2/30"))
CIRCUITS = {"primary": PRIMARY, "backup": BACKUP}


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair; both ends are created directly in their namespaces (never in the root)."""

    ns: str
    name: str
    peer_ns: str
    peer: str


_LAB_NS = re.compile(rf"^{NS_PREFIX}([a-z0-9]{{1,10}})-({'|'.join(ROLES)})$")


def lab_ids(namespaces: list[str]) -> set[str]:
    """Ids of the labs these namespace names belong to (others' `dslf-*` names ignored)."""
    return {m.group(1) for m in map(_LAB_NS.match, namespaces) if m}


def check_lab_id(lab_id: str) -> str:
    if not _LAB_ID.match(lab_id):
        raise ValueError(f"lab id {lab_id!r}: use 1-10 characters a-z, 0-9")
    return lab_id


@dataclass(frozen=True)
class Topology:
    """Names and commands for the lab with one id."""

    lab_id: str

    def __post_init__(self) -> None:
        check_lab_id(self.lab_id)

    @property
    def prefix(self) -> str:
        return f"{NS_PREFIX}{self.lab_id}-"

    def ns(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown namespace role {role!r}")
        return f"{self.prefix}{role}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(self.ns(role) for role in ROLES)

    @property
    def links(self) -> tuple[Link, ...]:
        n = self.ns
        return (
            Link(n("inside"), "lan0", n("router"), "lan0"),
            Link(n("router"), "wan0", n("wan"), "router"),
            Link(n("isp1"), "wan0", n("wan"), "isp1"),
            Link(n("isp2"), "wan0", n("wan"), "isp2"),
            Link(n("isp1"), "up0", n("internet"), "isp1"),
            Link(n("isp2"), "up0", n("internet"), "isp2"),
            Link(n("remote"), "up0", n("internet"), "remote"),
        )

    def create_lines(self) -> list[str]:
        """Root-namespace `ip -batch` lines: the namespaces and every veth pair."""
        lines = [f"netns add {ns}" for ns in self.namespaces]
        lines += [f"link add {lk.name} netns {lk.ns} type veth peer name {lk.peer} "
                  f"netns {lk.peer_ns}" for lk in self.links]
        return lines

    def setup_lines(self) -> dict[str, list[str]]:
        """Per-namespace `ip -batch` lines: addresses, bridge, routes (router WAN excluded)."""
        up = "link set {} up".format
        lines: dict[str, list[str]] = {ns: [up("lo")] for ns in self.namespaces}
        lines[self.ns("inside")] += [
            f"addr add {INSIDE_ADDR}/{LAN.prefixlen} dev lan0", up("lan0"),
            f"route add default via {ROUTER_LAN_ADDR}"]
        lines[self.ns("router")] += [
            f"addr add {ROUTER_LAN_ADDR}/{LAN.prefixlen} dev lan0", up("lan0"), up("wan0")]
        lines[self.ns("wan")] += ["link add br0 type bridge", up("br0")]
        for port in ("router", "isp1", "isp2"):
            lines[self.ns("wan")] += [f"link set {port} master br0", up(port)]
        internet = lines[self.ns("internet")]
        internet += [f"addr add {t}/32 dev lo" for t in TARGETS]
        for c in (PRIMARY, BACKUP):
            lines[self.ns(c.isp)] += [
                f"addr add {c.gateway} dev wan0", up("wan0"),
                f"addr add {c.uplink} dev up0", up("up0"),
                f"route add default via {c.uplink_peer.ip}",
                # while the DSL line is down its subnet is unreachable, not bounced back
                # to the internet (which would send it straight back: a routing loop)
                f"route add unreachable {c.subnet} metric 1000"]
            internet += [f"addr add {c.uplink_peer} dev {c.isp}", up(c.isp),
                         f"route add {c.subnet} via {c.uplink.ip}"]
        internet += [f"addr add {REMOTE_UPLINK_GW} dev remote", up("remote")]
        lines[self.ns("remote")] += [
            f"addr add {MX_ADDR}/32 dev lo",
            f"addr add {REMOTE_PUBLIC} dev up0", up("up0"),
            f"route add default via {REMOTE_UPLINK_GW.ip}"]
        return lines

    @property
    def forwarding(self) -> tuple[str, ...]:
        """Namespaces that route between their interfaces."""
        return tuple(self.ns(r) for r in ("router", "isp1", "isp2", "internet"))

    def router_ruleset(self) -> str:
        """NAT out of the WAN, and the "Server List" pinhole: tunnel address :25 -> mail."""
        return f"""\
table ip dslf_router {{
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {TUNNEL_ROUTER.ip} tcp dport 25 dnat to {INSIDE_ADDR}:25
    }}
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan0" ip saddr {LAN} masquerade
    }}
}}
"""

    def loss_ruleset(self, percent: int) -> str:
        """ICMP loss on the primary path: drop `percent` % of what the router sends to isp1.

        Only the direction towards the ISP is dropped, so a ping's loss is `percent` %
        (dropping both ways would make it 1 - (1 - p)^2).
        """
        if not 0 <= percent <= 100:
            raise ValueError(f"loss {percent}: must be 0..100 percent")
        rule = ""
        match = 'iifname "wan0" meta l4proto icmp'
        if percent == 100:  # numgen's `mod 100` yields 0..99: 100 % needs no random test
            rule = f"add rule inet dslf_loss pre {match} drop\n"
        elif percent:
            rule = f"add rule inet dslf_loss pre {match} numgen random mod 100 < {percent} drop\n"
        return ("table inet dslf_loss {\n"
                "    chain pre { type filter hook prerouting priority -150; policy accept; }\n"
                "}\n"
                "flush chain inet dslf_loss pre\n" + rule)

    def reply_loss_ruleset(self, percent: int) -> str:
        """One-way loss on the primary path: drop `percent` % of the echo replies isp1
        forwards to the router; the requests pass (0 clears)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss {percent}: must be 0..100 percent")
        test = "" if percent == 100 else f" numgen random mod 100 < {percent}"
        rule = (f'add rule inet dslf_reply_loss replies oifname "wan0" icmp type echo-reply'
                f'{test} drop\n') if percent else ""
        return ("table inet dslf_reply_loss {\n"
                "    chain replies { type filter hook forward priority -150; policy accept; }\n"
                "}\n"
                "flush chain inet dslf_reply_loss replies\n" + rule)


def wan_lines(wan: WanConfig, iface: str = "wan0") -> list[str]:
    """What the router does to its WAN interface for one circuit (the emulator does the same)."""
    return [f"addr flush dev {iface}", f"addr add {wan.address}/{wan.prefixlen} dev {iface}",
            f"route replace default via {wan.gateway} dev {iface}"]


def tunnel_lines(local: IPv4Address, remote: IPv4Address,
                 side: Literal["router", "remote"]) -> list[str]:
    """Create one end of the tunnel between the router's WAN address and remote's public one.

    A vxlan device carries packets only between these two underlay addresses: once the
    router's WAN address changes, the old device has a source address that no longer
    exists and carries nothing, just as an IPsec SA bound to the old address would.
    """
    if side == "router":
        own, peer, route = TUNNEL_ROUTER, TUNNEL_REMOTE.ip, MX_NET
    else:
        own, peer, route = TUNNEL_REMOTE, TUNNEL_ROUTER.ip, LAN
    return [f"link add tun0 type vxlan id {VXLAN_ID} local {local} remote {remote} "
            f"dstport {VXLAN_PORT}",
            f"addr add {own} dev tun0", "link set tun0 up",
            f"route add {route} via {peer} dev tun0"]
