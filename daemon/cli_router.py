"""`dslfailover router show|apply`: the router's WAN config by hand (DESIGN §8).

Exit codes: 0 done; 1 the router failed (unreachable, refused, timed out, read-back
differs: the message on stderr names the step); 78 the config is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from router_drivers import RouterDriver, RouterError, WanConfig, create_driver

from .cli_common import add_config_arg, load_or_exit, print_json
from .config import EXIT_CONFIG, Config
from .wiring import router_settings

EXIT_FAILED = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "router", help="read or change the router's WAN config",
        description="Read the router's WAN address, netmask and gateway, or move it to the "
                    "primary or backup circuit.")
    actions = parser.add_subparsers(dest="router_action", metavar="ACTION")
    actions.required = True
    show = actions.add_parser("show", help="read the WAN config from the router")
    add_config_arg(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--transcript", metavar="FILE", type=Path,
                      help="write the session's transcript (passwords masked) to FILE")
    show.set_defaults(func=_show)
    apply = actions.add_parser("apply", help="set the WAN config of one circuit and save it")
    apply.add_argument("circuit", choices=["primary", "backup"])
    add_config_arg(apply)
    apply.add_argument("--dry-run", action="store_true",
                       help="read the router, show what would be sent, change nothing")
    apply.add_argument("--transcript", metavar="FILE", type=Path,
                       help="write the session's transcript (passwords masked) to FILE")
    apply.set_defaults(func=_apply)


def _driver(args: argparse.Namespace) -> tuple[Config, RouterDriver]:
    cfg, secrets = load_or_exit(args)
    try:
        driver = create_driver(cfg.router.driver, router_settings(cfg, secrets))
    except (ValueError, RouterError) as exc:
        print(f"router: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return cfg, driver


def _circuit(cfg: Config, wan: WanConfig) -> str:
    if wan == cfg.router.primary.wan():
        return "primary"
    if wan == cfg.router.backup.wan():
        return "backup"
    return "unknown"


def _save_transcript(driver: RouterDriver, path: Path | None) -> None:
    if path is not None:
        path.write_text(driver.transcript(), encoding="utf-8")


def _fail(driver: RouterDriver, args: argparse.Namespace, exc: RouterError) -> int:
    _save_transcript(driver, args.transcript)
    saved = " (the router had saved the change)" if exc.saved else " (nothing was saved)"
    print(f"dslfailover: router {args.router_action} failed at {exc}{saved}"
          if args.router_action == "apply" else f"dslfailover: router show failed at {exc}",
          file=sys.stderr)
    return EXIT_FAILED


async def _bounded(cfg: Config, coro: Coroutine[Any, Any, WanConfig]) -> WanConfig:
    try:
        async with asyncio.timeout(cfg.router.action_timeout):
            return await coro
    except TimeoutError:
        raise RouterError("router", f"gave up after router.action_timeout = "
                          f"{cfg.router.action_timeout}s") from None


def _show(args: argparse.Namespace) -> int:
    cfg, driver = _driver(args)
    try:
        wan: WanConfig = asyncio.run(_bounded(cfg, driver.read_wan()))
    except RouterError as exc:
        return _fail(driver, args, exc)
    _save_transcript(driver, args.transcript)
    circuit = _circuit(cfg, wan)
    if args.json:
        print_json({**wan.as_dict(), "prefixlen": wan.prefixlen, "circuit": circuit,
                    "driver": cfg.router.driver})
    else:
        print(f"WAN {wan.address} netmask {wan.netmask} gateway {wan.gateway} "
              f"(circuit: {circuit})")
    return 0


def _apply(args: argparse.Namespace) -> int:
    cfg, driver = _driver(args)
    target = getattr(cfg.router, args.circuit).wan()
    try:
        if args.dry_run:
            current: WanConfig = asyncio.run(_bounded(cfg, driver.read_wan()))
            _save_transcript(driver, args.transcript)
            plan = getattr(driver, "plan", None)
            steps: list[str] = plan(current, target) if plan else [f"set {target}"]
            print(f"router now {current} (circuit: {_circuit(cfg, current)})")
            if not steps:
                print(f"already on {args.circuit}: nothing would be sent")
            else:
                print(f"would apply {args.circuit} {target}, sending:")
                for step in steps:
                    print(f"  {step}")
            return 0
        back: WanConfig = asyncio.run(_bounded(cfg, driver.apply_wan(target)))
    except RouterError as exc:
        return _fail(driver, args, exc)
    _save_transcript(driver, args.transcript)
    print(f"router on {args.circuit}: {back} (read back)")
    return 0
