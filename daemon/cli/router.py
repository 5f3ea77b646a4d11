"""`dslfailover router show|apply|explore`: the router's WAN config by hand (DESIGN §8).

`router explore` maps the console read-only and proposes `[router.dialogue]`.

Exit codes: 0 done; 1 the router failed (unreachable, refused, timed out, read-back
differs: the message on stderr names the step); 78 the config is unusable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from router_drivers import RouterDriver, RouterError, RouterReading, WanConfig, create_driver

from .common import Subcommands, add_command, add_json_arg, load_or_exit, print_json

if TYPE_CHECKING:
    from ..config import Config

# The config, the executor and asyncio are imported by the handlers, not to build the
# parser (`dslfailover --help` stays quick).

EXIT_FAILED = 1
T = TypeVar("T")


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "router", help="read or change the router's WAN config",
        description="Read the router's WAN address, netmask and gateway, or move it to the "
                    "primary or backup circuit.")
    actions = parser.add_subparsers(dest="router_action", metavar="ACTION")
    actions.required = True
    show = add_command(actions, "show", _show, help="read the WAN config from the router")
    add_json_arg(show)
    _add_transcript_arg(show)
    apply = add_command(actions, "apply", _apply,
                        help="set the WAN config of one circuit and save it")
    apply.add_argument("circuit", choices=["primary", "backup"])
    apply.add_argument("--dry-run", action="store_true",
                       help="read the router, show what would be sent, change nothing")
    _add_transcript_arg(apply)
    explore = add_command(
        actions, "explore", _explore,
        help="map the console read-only and propose [router.dialogue]",
        description="Walk the router's console without changing anything (menu: every "
                    "screen reachable through items ending in '...', never an item whose "
                    "label matches the deny list; CLI: help, show, netstat only) and "
                    "propose the [router.dialogue] tables that drive it.")
    explore.add_argument("--out", metavar="FILE", type=Path,
                         help="write the proposed [router.dialogue] TOML (with the screen "
                              "map as comments) to FILE")
    explore.add_argument("--deny", metavar="REGEX", action="append", default=[],
                         help="never select an item whose label matches REGEX (added to "
                              "the built-in list: save, restart, reset, factory, ...)")
    _add_transcript_arg(explore)


def _add_transcript_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transcript", metavar="FILE", type=Path,
                        help="write the session's transcript (passwords masked) to FILE")


def _driver(args: argparse.Namespace) -> tuple[Config, RouterDriver]:
    from ..config import EXIT_CONFIG
    from ..wiring import router_settings

    cfg, secrets = load_or_exit(args)
    try:
        driver = create_driver(cfg.router.driver, router_settings(cfg, secrets))
    except (ValueError, RouterError) as exc:
        print(f"router: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return cfg, driver


def _circuit(cfg: Config, wan: WanConfig) -> str:
    """Which circuit `wan` is, by the executor's rule (`classify`)."""
    from ..executor import classify

    return classify(wan, cfg.router.primary.wan(), cfg.router.backup.wan()).value


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


async def _bounded(cfg: Config, coro: Coroutine[Any, Any, T], times: int = 1) -> T:
    """`coro` within `times` x router.action_timeout (explore walks many screens)."""
    import asyncio

    limit = cfg.router.action_timeout * times
    try:
        async with asyncio.timeout(limit):
            return await coro
    except TimeoutError:
        what = "router.action_timeout" if times == 1 else f"{times} x router.action_timeout"
        raise RouterError("router", f"gave up after {what} = {limit:g}s") from None


def _show(args: argparse.Namespace) -> int:
    import asyncio

    cfg, driver = _driver(args)
    try:
        reading: RouterReading = asyncio.run(_bounded(cfg, driver.read_state()))
    except RouterError as exc:
        return _fail(driver, args, exc)
    _save_transcript(driver, args.transcript)
    wan = reading.running
    circuit = _circuit(cfg, wan)
    saved = reading.saved
    if args.json:
        print_json({**wan.as_dict(), "prefixlen": wan.prefixlen, "circuit": circuit,
                    "driver": cfg.router.driver,
                    "saved": None if saved is None else {**saved.as_dict(),
                                                         "circuit": _circuit(cfg, saved)}})
    else:
        print(f"WAN {wan.address} netmask {wan.netmask} gateway {wan.gateway} "
              f"(circuit: {circuit}; what the router runs)")
        if saved is not None and saved != wan:
            print(f"SAVED {saved.address} netmask {saved.netmask} gateway {saved.gateway} "
                  f"(circuit: {_circuit(cfg, saved)}): differs from what it runs; it will "
                  "run this after its next restart")
    return 0


def _apply(args: argparse.Namespace) -> int:
    import asyncio

    cfg, driver = _driver(args)
    target = getattr(cfg.router, args.circuit).wan()
    try:
        if args.dry_run:
            current: RouterReading = asyncio.run(_bounded(cfg, driver.read_state()))
            _save_transcript(driver, args.transcript)
            steps = driver.plan(current, target)
            print(f"router {current} (circuit: {_circuit(cfg, current.running)})")
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
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in driver.timings.items())
    print(f"router on {args.circuit}: {back} (read back after the apply; {timings})")
    return 0


def _explore(args: argparse.Namespace) -> int:
    import asyncio

    import tomli_w

    from router_drivers.explore import Exploration, explore_cli, explore_menu

    from ..config import EXIT_CONFIG
    from ..wiring import router_settings

    cfg, secrets = load_or_exit(args)
    settings = router_settings(cfg, secrets)
    if cfg.router.driver not in ("netopia-menu", "netopia-cli"):
        print(f"dslfailover: router explore knows the Netopia consoles, not driver "
              f"{cfg.router.driver!r}", file=sys.stderr)
        return EXIT_CONFIG
    found: Exploration
    try:
        found = asyncio.run(_bounded(cfg, explore_menu(settings, args.deny)
                                     if cfg.router.driver == "netopia-menu"
                                     else explore_cli(settings), times=2))
    except RouterError as exc:
        print(f"dslfailover: router explore failed at {exc} (nothing was changed)",
              file=sys.stderr)
        return EXIT_FAILED
    if args.transcript is not None:
        args.transcript.write_text(found.transcript, encoding="utf-8")
    proposal = tomli_w.dumps({"router": {"dialogue": found.proposal}}) if found.proposal \
        else "# nothing to propose: the defaults fit (see the notes above)\n"
    header = ["# proposed by `dslfailover router explore` (read-only; nothing was changed)",
              "# review it, merge it into the config, then: dslfailover check; dslfailover "
              "router apply backup --dry-run", *(f"# note: {n}" for n in found.notes), ""]
    text = "\n".join(header) + "\n" + proposal + "\n# --- what was seen ---\n" + "".join(
        f"# {line}\n" for line in found.report.splitlines())
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"proposal written to {args.out}")
    print(text, end="")
    return 0

