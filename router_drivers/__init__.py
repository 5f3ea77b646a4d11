"""Router drivers: read and change a router's WAN addressing (DESIGN §5).

A library used by the daemon; it never imports `daemon`.
"""

from .base import RouterDriver, RouterReading, RouterSettings, Secret, WanConfig
from .errors import (
    RouterAuthError,
    RouterConnectError,
    RouterError,
    RouterMismatch,
    RouterParseError,
    RouterRefused,
    RouterTimeout,
)
from .registry import DIALOGUES, DRIVERS, DriverName, create_driver

__all__ = [
    "DIALOGUES",
    "DRIVERS",
    "DriverName",
    "RouterAuthError",
    "RouterConnectError",
    "RouterDriver",
    "RouterError",
    "RouterMismatch",
    "RouterParseError",
    "RouterReading",
    "RouterRefused",
    "RouterSettings",
    "RouterTimeout",
    "Secret",
    "WanConfig",
    "create_driver",
]
