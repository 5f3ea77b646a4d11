"""The `dslfailover` command line (DESIGN §8).

Each command group lives in its own module and registers itself here with
`register(subparsers)`; a handler takes the parsed args and returns the exit code.
Nothing is imported at module level but what `main` needs before its first line: the
stop signals are recorded from there on (daemon/stopping.py), even while the command
groups and their libraries are still being imported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .. import __version__, stopping

if TYPE_CHECKING:
    import argparse

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


# Which module registers each command: `dslfailover status ...` builds (and imports) only
# the ops group's parser; `--help`, no command or an unknown one build them all. A test
# holds this equal to what the modules register.
GROUPS = {
    "run": "core", "check": "core", "probe": "core", "demo": "core",
    "status": "ops", "failover": "ops", "failback": "ops", "hold": "ops", "resume": "ops",
    "verify": "ops", "router": "router", "mx": "mx", "lab": "lab",
}
_MODULES = {"core": "daemon.cli.core", "ops": "daemon.cli.ops", "router": "daemon.cli.router",
            "mx": "daemon.cli.mx", "lab": "daemon.lab.cli"}


def _registrars(command: str | None = None) -> list[Registrar]:
    # Imported here so that `dslfailover --help` stays fast and one broken group
    # does not take the others down with an import error at start.
    import importlib

    names = [GROUPS[command]] if command in GROUPS else list(_MODULES)
    return [importlib.import_module(_MODULES[n]).register for n in names]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, only the part their command needs."""
    import argparse

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
    # the command is the first argument; with an option before it (`-h status`) the
    # top-level parser answers, and it must know every group
    command = argv[0] if argv and not argv[0].startswith("-") else None
    for register in _registrars(command):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # first thing: a SIGTERM from now on is a clean stop, not the default kill
    stopping.record_early()
    try:
        args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
        if not getattr(args, "honours_stop", False):
            stopping.release()   # not the daemon: SIGTERM and SIGINT act as usual
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except KeyboardInterrupt:
        return 130
    finally:
        stopping.restore()
