"""`python -m router_drivers.emulator`: run one emulated Netopia console until killed.

    python -m router_drivers.emulator (--console menu|cli | --profile NAME) --host ADDR --port N
        [--password-file F] [--username NAME] [--initial ADDRESS,NETMASK,GATEWAY]
        [--apply-iface IFACE] [--apply-command 'CMD {address} {netmask} {gateway} {prefixlen}']
        [--restart-delay S] [--control SOCKET]

A profile (`--profile`, see `state.PROFILES`) is a documented firmware variant; `--console
menu|cli` is its console's default profile (r9100, socos). Those restart to apply: a save
changes the saved config, and the WAN (and the hook) change when the router restarts.

With --apply-iface a save really sets that interface's address and default route (in the
namespace this runs in) and the initial config is read from it unless --initial is given.
With --control, a unix socket answers what the router saved and runs and injects faults
(control.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import structlog

from ..base import WanConfig
from ..errors import RouterError
from .control import emulator_handler, serve_json_lines
from .server import Emulator
from .state import PROFILES, IpBackend, MemoryBackend, RouterState, WanBackend, profile

DEFAULT_PROFILES = {"menu": "r9100", "cli": "socos"}
DEFAULT_INITIAL = "203.0.113.2,255.255.255.248,203.0.113.1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m router_drivers.emulator",
                                description="An emulated Netopia router console over telnet.")
    p.add_argument("--console", choices=["menu", "cli"])
    p.add_argument("--profile", choices=sorted(PROFILES))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2323)
    p.add_argument("--password-file", type=Path)
    p.add_argument("--username", help="menu: Superuser name; cli: login name")
    p.add_argument("--initial", metavar="ADDRESS,NETMASK,GATEWAY")
    p.add_argument("--apply-iface", metavar="IFACE")
    p.add_argument("--apply-command", metavar="CMD")
    p.add_argument("--restart-delay", type=float, default=None,
                   help="seconds a restart keeps the router away (profile default 0.2)")
    p.add_argument("--control", type=Path, metavar="SOCKET",
                   help="a unix socket to read the router's state and inject faults")
    p.add_argument("--no-fragment", action="store_true", help="send output in one piece")
    args = p.parse_args(argv)
    if (args.console is None) == (args.profile is None):
        p.error("give exactly one of --console and --profile")
    return args


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
    overrides: dict[str, object] = {"username": args.username, "password": password,
                                    "fragment": not args.no_fragment}
    if args.restart_delay is not None:
        overrides["restart_delay"] = args.restart_delay
    name = args.profile or DEFAULT_PROFILES[args.console]
    console, options = profile(name, **overrides)
    state = RouterState(console, await initial_config(args, backend), options, backend)
    emulator = Emulator(state, args.host, args.port)
    await emulator.start()
    control = (await serve_json_lines(args.control, emulator_handler(emulator))
               if args.control else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"emulator: {console} console on {args.host}:{emulator.port} (profile {name}), "
          f"WAN {state.saved}, restart {options.restart_delay:g}s", flush=True)
    try:
        await stop.wait()
    finally:
        if control is not None:
            control.close()
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # our own events are structlog key/value, on stderr beside telnetlib3's
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
