"""Helpers shared by the CLI groups: the -c option, loading config, printing JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

if TYPE_CHECKING:
    from ..config import Config, Secrets
    from ..config_file import ConfigError

# The config (pydantic) is imported when a command loads one, not to build the parser:
# `dslfailover --help` imports the CLI modules only.


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", metavar="FILE", default=None,
        help="config file (default: $DSLFAILOVER_CONFIG or /etc/dslfailover/dslfailover.toml)")


# what `add_subparsers()` returns (a string: the class cannot be subscripted at run time)
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(sub: Subcommands, name: str, func: Callable[[argparse.Namespace], int], *,
                help: str, description: str | None = None, config: bool = True,
                **defaults: Any) -> argparse.ArgumentParser:
    """A subcommand that runs `func(args)`: its parser, with `-c FILE` unless `config` is off.

    `defaults` are set on its namespace beside `func` (e.g. the operator action).
    """
    parser = sub.add_parser(name, help=help, description=description)
    if config:
        add_config_arg(parser)
    parser.set_defaults(func=func, **defaults)
    return parser


def add_json_arg(parser: argparse.ArgumentParser, help: str = "machine-readable output") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def config_error_exit(err: ConfigError) -> NoReturn:
    from ..config_file import EXIT_CONFIG

    for line in err.problems:
        print(line, file=sys.stderr)
    print(f"dslfailover: {err.source}: {len(err.problems)} problem(s); see above",
          file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def load_or_exit(args: argparse.Namespace) -> tuple[Config, Secrets]:
    """Load and validate the config and its secrets; on any problem exit 78."""
    from ..config import ConfigError, load_config, load_secrets

    path = _config_file(args)
    try:
        cfg = load_config(path)
    except ConfigError as err:
        config_error_exit(err)
    try:
        sec = load_secrets(cfg)
    except ConfigError as err:
        # the secret files are the config's: their problems are reported under its path
        config_error_exit(ConfigError(str(path), err.problems))
    return cfg, sec


def control_socket_or_exit(args: argparse.Namespace) -> Path:
    """The config's `[control] socket`, read without validating the rest (the operator
    commands need nothing else, and the schema is slow to import); exit 78 when it is
    unusable."""
    from ..config_file import ConfigError, control_socket

    try:
        return control_socket(_config_file(args))
    except ConfigError as err:
        config_error_exit(err)


def _config_file(args: argparse.Namespace) -> Path:
    """The config file `args` name; exit 78 saying where it looked when there is none."""
    from ..config_file import EXIT_CONFIG, config_path

    path = config_path(args.config)
    if args.config is None and not path.exists():
        # no -c and nothing at the default: say where it looked and how to point elsewhere
        socket_hint = (", or --socket PATH for the daemon's control socket"
                       if hasattr(args, "socket") else "")
        print(f"dslfailover: no config at {path} (give -c FILE or set "
              f"$DSLFAILOVER_CONFIG{socket_hint})", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return path


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
