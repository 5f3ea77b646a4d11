"""The config file as a file: where it is, its TOML, and its errors; no schema.

`daemon.config` validates what is read here (pydantic 2). The operator commands
(`status`, `failover`, ...) need one value of it, the control socket, and read just that
(`control_socket`), so that they answer quickly: importing the schema costs more than
the whole exchange with the daemon. Everything else is refused by `check` and `run`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/dslfailover/dslfailover.toml")
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h; systemd's RestartPreventExitStatus=78
# Where the daemon serves and the CLI asks, unless `[control] socket` says otherwise
# (the schema's default too: the one home of it).
DEFAULT_SOCKET = Path("/run/dslfailover/control.sock")
# sun_path is 108 bytes with the terminating NUL: a longer path cannot be bound
UNIX_PATH_MAX = 107


class ConfigError(Exception):
    """A config that cannot be used. `problems` are `<field.path>: <why>` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def socket_path_problem(path: Path) -> str | None:
    """Why `path` cannot be a unix socket's path (None when it can)."""
    size = len(os.fsencode(path))
    if size > UNIX_PATH_MAX:
        return f"{size} bytes long: a unix socket path has at most {UNIX_PATH_MAX}"
    return None


def config_path(arg: str | os.PathLike[str] | None) -> Path:
    """`-c FILE`, else $DSLFAILOVER_CONFIG, else the default."""
    if arg:
        return Path(arg)
    env = os.environ.get("DSLFAILOVER_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"(file): not UTF-8 text: {exc}"]) from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)"
        raise ConfigError(source, [f"(toml): syntax error: {exc}"]) from None


def control_socket(path: Path) -> Path:
    """`[control] socket` of the config at `path` (its default when not set), checked as
    the schema checks it; ConfigError otherwise."""
    data = parse_toml(read_text(path), str(path))
    control = data.get("control", {})
    if not isinstance(control, dict):
        raise ConfigError(str(path), ["control: Input should be a table"])
    value = control.get("socket", str(DEFAULT_SOCKET))
    if not isinstance(value, str):
        raise ConfigError(str(path), ["control.socket: Input should be a valid path "
                                      f"(got {value!r})"])
    problem = socket_path_problem(Path(value))
    if problem is not None:
        raise ConfigError(str(path), [f"control.socket: {problem}"])
    return Path(value)
