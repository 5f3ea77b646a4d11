"""Driver registry: a plain dict from the config's `router.driver` name to a factory."""

from __future__ import annotations

from collections.abc import Callable

from .base import RouterDriver, RouterSettings
from .dryrun import DryRunDriver
from .linux import LinuxDriver
from .netopia_cli import NetopiaCliDriver
from .netopia_menu import NetopiaMenuDriver
from .ssh import SshDriver

DriverFactory = Callable[[RouterSettings], RouterDriver]

DRIVERS: dict[str, DriverFactory] = {
    "netopia-menu": NetopiaMenuDriver,
    "netopia-cli": NetopiaCliDriver,
    "ssh": SshDriver,
    "linux": LinuxDriver,
    "dry-run": DryRunDriver,
}


def create_driver(name: str, settings: RouterSettings) -> RouterDriver:
    try:
        factory = DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown router driver {name!r} (known: {known})") from None
    return factory(settings)
