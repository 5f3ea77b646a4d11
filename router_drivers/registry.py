"""Driver registry: a plain dict from the config's `router.driver` name to a factory."""

from __future__ import annotations

from collections.abc import Callable

from .base import RouterDriver, RouterSettings
from .dryrun import DryRunDriver

DriverFactory = Callable[[RouterSettings], RouterDriver]

DRIVERS: dict[str, DriverFactory] = {
    "dry-run": DryRunDriver,
}


def create_driver(name: str, settings: RouterSettings) -> RouterDriver:
    try:
        factory = DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(f"unknown router driver {name!r} (known: {known})") from None
    return factory(settings)
