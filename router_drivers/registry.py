"""Driver registry: a plain dict from the config's `router.driver` name to a factory.

`DriverName` (the names the config accepts) is written out for the type checker and the
config's validation; a test holds it equal to the keys of `DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from .base import RouterDriver, RouterSettings

DriverFactory = Callable[[RouterSettings], RouterDriver]
DriverName = Literal["netopia-menu", "netopia-cli", "ssh", "linux", "dry-run"]


# Each driver's module is imported only when that driver is used: the SSH driver pulls in
# asyncssh and cryptography (~17 MB of RSS) that a telnet-only daemon never needs, and
# the config (which reads this registry) stays quick to import for the CLI.
def _netopia_menu(settings: RouterSettings) -> RouterDriver:
    from .netopia_menu import NetopiaMenuDriver

    return NetopiaMenuDriver(settings)


def _netopia_cli(settings: RouterSettings) -> RouterDriver:
    from .netopia_cli import NetopiaCliDriver

    return NetopiaCliDriver(settings)


def _ssh(settings: RouterSettings) -> RouterDriver:
    from .ssh import SshDriver

    return SshDriver(settings)


def _linux(settings: RouterSettings) -> RouterDriver:
    from .linux import LinuxDriver

    return LinuxDriver(settings)


def _dry_run(settings: RouterSettings) -> RouterDriver:
    from .dryrun import DryRunDriver

    return DryRunDriver(settings)


DRIVERS: dict[str, DriverFactory] = {
    "netopia-menu": _netopia_menu,
    "netopia-cli": _netopia_cli,
    "ssh": _ssh,
    "linux": _linux,
    "dry-run": _dry_run,
}


# The shipped dialogue (router_drivers/dialogues/<name>.toml) of each driver that has one:
# the config's [router.dialogue] overrides go over it.
DIALOGUES: dict[str, str] = {
    "netopia-menu": "netopia_menu", "netopia-cli": "netopia_cli", "ssh": "ssh"}


def create_driver(name: str, settings: RouterSettings) -> RouterDriver:
    try:
        factory = DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown router driver {name!r} (known: {known})") from None
    return factory(settings)
