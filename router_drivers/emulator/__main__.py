"""`python -m router_drivers.emulator`: run one emulated Netopia console until killed.

    python -m router_drivers.emulator --console menu|cli --host ADDR --port N
        [--password-file F] [--username NAME] [--initial ADDRESS,NETMASK,GATEWAY]
        [--apply-iface IFACE] [--apply-command 'CMD {address} {netmask} {gateway} {prefixlen}']
        [--restart-delay S]

With --apply-iface a save really sets that interface's address and default route (in the
namespace this runs in) and the initial config is read from it unless --initial is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from ..base import WanConfig
from ..errors import RouterError
from .server import Emulator
from .state import EmulatorOptions, IpBackend, MemoryBackend, RouterState, WanBackend

DEFAULT_INITIAL = "203.0.113.2,255.255.255.248,203.0.113.1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m router_drivers.emulator",
                                description="An emulated Netopia router console over telnet.")
    p.add_argument("--console", choices=["menu", "cli"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2323)
    p.add_argument("--password-file", type=Path)
    p.add_argument("--username", help="menu: Superuser name; cli: login name")
    p.add_argument("--initial", metavar="ADDRESS,NETMASK,GATEWAY")
    p.add_argument("--apply-iface", metavar="IFACE")
    p.add_argument("--apply-command", metavar="CMD")
    p.add_argument("--restart-delay", type=float, default=None)
    p.add_argument("--no-fragment", action="store_true", help="send output in one piece")
    return p.parse_args(argv)


async def initial_config(args: argparse.Namespace, backend: WanBackend) -> WanConfig:
    if args.initial:
        parts = args.initial.split(",")
        if len(parts) != 3:
            raise SystemExit("--initial: expected ADDRESS,NETMASK,GATEWAY")
        try:
            return WanConfig.parse(*parts)
        except ValueError as exc:
            raise SystemExit(f"--initial: {exc}") from None
    if isinstance(backend, IpBackend):
        try:
            return await backend.read()
        except RouterError as exc:
            raise SystemExit(f"--apply-iface {backend.iface}: cannot read it: {exc}") from None
    return WanConfig.parse(*DEFAULT_INITIAL.split(","))


async def amain(args: argparse.Namespace) -> None:
    password = None
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise SystemExit(f"--password-file: {exc.strerror or exc}") from None
    backend: WanBackend = (IpBackend(args.apply_iface, args.apply_command) if args.apply_iface
                           else MemoryBackend())
    options = EmulatorOptions(username=args.username, password=password,
                              restart_delay=args.restart_delay, fragment=not args.no_fragment)
    state = RouterState(args.console, await initial_config(args, backend), options, backend)
    emulator = Emulator(state, args.host, args.port)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"emulator: {args.console} console on {args.host}:{emulator.port}, "
          f"WAN {state.saved}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
