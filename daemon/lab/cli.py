"""`dslfailover lab ...`: the lab (a whole site in network namespaces) by hand, as root.

    lab up [--console cli|menu] [--router-restart S]
                  build it; prints the daemon config it wrote. The router restarts to
                  apply a change and is away S seconds (default 20, a plausible real figure)
    lab status    what exists and what works (--json)
    lab cut / restore [--backup]   the primary (or backup) circuit dies / comes back
    lab loss PERCENT               ICMP loss on the primary path (0 clears)
    lab flap [--times N]           cut and restore N times
    lab send [--subject S]         mail to the backup MX (reaches our sink via the tunnel)
    lab wan primary|backup         address the router's WAN by hand (and re-key the tunnel)
    lab exec ROLE -- CMD ...       run a command in one of the lab's namespaces
    lab down [--all]               remove everything (also after a crash)

Every action takes --id ID: which lab (1-10 of a-z0-9; default $DSLFAILOVER_LAB, else
'lab'), so that several labs can live on one machine.

Only the argument parser is built at import: the lab itself (asyncio, the namespaces,
the emulator and the services) is imported when an action runs, so `--help` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..cli.common import print_json
from .topology import DEFAULT_ID, DEFAULT_ROUTER_RESTART, NS_PREFIX, ROLES, CircuitName, lab_ids

if TYPE_CHECKING:
    from .site import Lab

Handler = Callable[["Lab", argparse.Namespace], Coroutine[Any, Any, int]]


def _print_status(st: dict[str, Any]) -> None:
    print(f"lab {st['id']!r}: {'up' if st['up'] else 'not up'}")
    for ns, exists in st["namespaces"].items():
        print(f"  netns {ns}: {'present' if exists else 'MISSING'}")
    for p in st["processes"]:
        print(f"  process {p['name']} pid {p['pid']} in {p['ns']}: "
              f"{'running' if p['alive'] else 'DEAD'}")
    if not st["up"]:
        return
    router = st.get("router") or {}
    if router:
        print(f"  router: netopia-{router['console']} emulator, restarts to apply "
              f"(away {router['restart_s']:g}s)")
    wan = st["wan"]
    print(f"  router WAN: {wan.get('address', '-')}/{wan.get('netmask', '-')} via "
          f"{wan.get('gateway', '-')} ({wan['circuit']} circuit)")
    for name, c in st["circuits"].items():
        extra = f", loss {c['loss_percent']}%" if "loss_percent" in c else ""
        print(f"  {name} circuit: link {c['link']}, {'active' if c['active'] else 'idle'}, "
              f"{'works' if c['works'] else 'no traffic'}{extra}")
    print(f"  internet from inside: {'yes' if st['internet_from_inside'] else 'NO'}")
    print(f"  tunnel: {'works' if st['tunnel']['works'] else 'DOWN'}")
    svc = st.get("services") or {}
    if svc:
        print(f"  our mail server (sink): {svc['sink']['host']}:{svc['sink']['port']}, "
              f"{st['sink_messages']} message(s) received")
        print(f"  mqtt broker (inside): {svc['mqtt']['host']}:{svc['mqtt']['port']}")
        print(f"  backup MX: sshd {svc['sshd']['user']}@{svc['sshd']['host']}:"
              f"{svc['sshd']['port']}, Postfix {svc['postfix']['address']}:"
              f"{svc['postfix']['port']} (-c {svc['postfix']['config_dir']})")
    print(f"  daemon config: {st['config']}")


async def _up(lab: Lab, args: argparse.Namespace) -> int:
    await lab.up()
    print(f"lab {lab.lab_id!r} is up; daemon config: {lab.config_path}")
    if not lab.with_services:
        print("no services: the config's router and backup MX have nothing to answer")
    print(f"run the daemon: ip netns exec {lab.ns('inside')} dslfailover run "
          f"-c {lab.config_path}")
    return 0


async def _down(lab: Lab, args: argparse.Namespace) -> int:
    from .netns import netns_list
    from .site import Lab

    labs = [lab]
    if args.all:
        ids = lab_ids(await netns_list())
        # state files of labs whose namespaces are already gone (a half-finished down)
        ids |= lab_ids([f"{NS_PREFIX}{p.stem}-inside" for p in lab.root.glob("*.json")])
        labs = [Lab(i, root=lab.root) for i in sorted(ids)]
    for each in labs:
        removed = await each.down()
        print(f"lab {each.lab_id!r}: removed {len(removed)} item(s)")
        for item in removed:
            print(f"  {item}")
    return 0


async def _status(lab: Lab, args: argparse.Namespace) -> int:
    st = await lab.status()
    if args.json:
        print_json(st)
    else:
        _print_status(st)
    return 0 if st["up"] else 1


async def _cut(lab: Lab, args: argparse.Namespace) -> int:
    circuit: CircuitName = "backup" if args.backup else "primary"
    await lab.cut(circuit)
    isp = "isp2" if args.backup else "isp1"
    print(f"lab {lab.lab_id!r}: {circuit} circuit cut ({isp} link down)")
    return 0


async def _restore(lab: Lab, args: argparse.Namespace) -> int:
    circuit: CircuitName = "backup" if args.backup else "primary"
    await lab.restore(circuit)
    print(f"lab {lab.lab_id!r}: {circuit} circuit restored")
    return 0


async def _loss(lab: Lab, args: argparse.Namespace) -> int:
    await lab.set_loss(args.percent)
    print(f"lab {lab.lab_id!r}: {args.percent}% ICMP loss on the primary path")
    return 0


async def _flap(lab: Lab, args: argparse.Namespace) -> int:
    print(f"lab {lab.lab_id!r}: flapping the primary {args.times} time(s) "
          f"({args.down:g}s down, {args.up:g}s up)", flush=True)
    await lab.flap(args.times, args.down, args.up)
    print(f"lab {lab.lab_id!r}: primary circuit restored")
    return 0


async def _send(lab: Lab, args: argparse.Namespace) -> int:
    await lab.send_to_backup_mx(args.subject)
    print(f"lab {lab.lab_id!r}: sent {args.subject!r} to the backup MX; our sink has "
          f"{len(lab.sink_messages())} message(s) so far")
    return 0


async def _wan(lab: Lab, args: argparse.Namespace) -> int:
    await lab.set_wan(args.circuit, rekey_tunnel=not args.no_rekey)
    print(f"lab {lab.lab_id!r}: router WAN on the {args.circuit} circuit"
          + ("" if not args.no_rekey else " (tunnel not re-keyed)"))
    return 0


async def _exec(lab: Lab, args: argparse.Namespace) -> int:
    argv = [a for a in args.argv if a != "--"] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        from .netns import LabError

        raise LabError("lab exec: no command given")
    # replace this process: the command gets the terminal, signals and exit code
    os.execvp("ip", ["ip", "netns", "exec", lab.ns(args.role), *argv])  # noqa: S606


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if os.geteuid() != 0:
            print("dslfailover lab: needs root (network namespaces, nftables)", file=sys.stderr)
            return 1
        import asyncio

        from .netns import LabError
        from .site import Lab

        try:
            lab = Lab(args.id, services=not getattr(args, "no_services", False),
                      console=getattr(args, "console", "cli"),
                      router_restart=getattr(args, "router_restart", DEFAULT_ROUTER_RESTART))
            return asyncio.run(handler(lab, args))
        except (LabError, ValueError) as exc:
            print(f"dslfailover lab: {exc}", file=sys.stderr)
            return 1
    return run


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number of seconds") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text}: must be 0..600 seconds")
    return value


def _percent(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text}: must be 0..100")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = sub.add_parser("lab", help="the lab: a whole site in network namespaces (root)",
                         description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    cmds = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    cmds.required = True
    default_id = os.environ.get("DSLFAILOVER_LAB", DEFAULT_ID)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--id", default=default_id,
                       help=f"lab id, 1-10 of a-z0-9 (default: $DSLFAILOVER_LAB or "
                            f"{DEFAULT_ID!r})")
        p.set_defaults(func=_run(handler))
        return p

    up = add("up", _up, "create the lab; the router starts on the primary circuit")
    up.add_argument("--console", choices=["cli", "menu"], default="cli",
                    help="the router emulator's console (default: cli)")
    up.add_argument("--router-restart", type=_seconds, default=DEFAULT_ROUTER_RESTART,
                    metavar="S",
                    help="seconds the router is away when it restarts to apply a change "
                         f"(default {DEFAULT_ROUTER_RESTART:g}, a plausible real figure)")
    up.add_argument("--no-services", action="store_true",
                    help="only the network: no router emulator, sink, broker, sshd, Postfix")
    down = add("down", _down, "remove every namespace, link and process of the lab")
    down.add_argument("--all", action="store_true",
                      help=f"every lab on this machine (namespaces named {NS_PREFIX}<id>-<role>)")
    status = add("status", _status, "what exists and whether each circuit and the tunnel work")
    status.add_argument("--json", action="store_true")
    cut = add("cut", _cut, "the primary circuit dies (isp1's link goes down)")
    cut.add_argument("--backup", action="store_true",
                     help="the backup circuit dies instead (isp2's link goes down)")
    restore = add("restore", _restore, "the primary circuit comes back")
    restore.add_argument("--backup", action="store_true",
                         help="the backup circuit comes back instead")
    loss = add("loss", _loss, "drop PERCENT %% of ICMP on the primary path (0 clears)")
    loss.add_argument("percent", type=_percent, metavar="PERCENT")
    flap = add("flap", _flap, "cut and restore the primary circuit several times")
    flap.add_argument("--times", type=int, default=3)
    flap.add_argument("--down", type=float, default=2.0, help="seconds cut (default 2)")
    flap.add_argument("--up", type=float, default=2.0, help="seconds restored (default 2)")
    send = add("send", _send, "send a message to the backup MX from the customer network")
    send.add_argument("--subject", default="lab test message")
    wan = add("wan", _wan, "address the router's WAN for a circuit by hand")
    wan.add_argument("circuit", choices=["primary", "backup"])
    wan.add_argument("--no-rekey", action="store_true",
                     help="leave the tunnel bound to the old address")
    ex = add("exec", _exec, "run a command inside one of the lab's namespaces")
    ex.add_argument("role", choices=ROLES)
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
