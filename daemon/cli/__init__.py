"""The `dslfailover` command line (DESIGN §8).

Each command group lives in its own module and registers itself here with
`register(subparsers)`; a handler takes the parsed args and returns the exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from .. import __version__

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Registrar]:
    # Imported here so that `dslfailover --help` stays fast and one broken group
    # does not take the others down with an import error at start.
    from ..lab import cli as lab
    from . import core, mx, ops, router

    return [core.register, ops.register, router.register, mx.register, lab.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dslfailover",
        description=(
            "Failover for a two-DSL office: watches the primary circuit, moves the router "
            "to the backup circuit and back, proves the backup MX can deliver our mail "
            "through the tunnel, and reports over MQTT and the journal."),
        epilog=(
            "Config: -c FILE, else $DSLFAILOVER_CONFIG, else "
            "/etc/dslfailover/dslfailover.toml. Start with `dslfailover check` and "
            "`dslfailover probe`, then `dslfailover run`. Try it all with `dslfailover demo`."),
    )
    parser.add_argument("--version", action="version", version=f"dslfailover {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
