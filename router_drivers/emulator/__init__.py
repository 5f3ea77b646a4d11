"""Emulators of both Netopia consoles (menu and CLI) as telnetlib3 servers.

Used by the tests (in-process, `run_emulator()`), by `dslfailover demo`, and by the lab,
which runs `python -m router_drivers.emulator` inside its router namespace so that a
saved config really changes the namespace's WAN address and default route.
"""

from .server import Emulator, run_emulator
from .state import (
    PROFILES,
    EmulatorOptions,
    IpBackend,
    MemoryBackend,
    RouterState,
    WanBackend,
    profile,
)

__all__ = ["PROFILES", "Emulator", "EmulatorOptions", "IpBackend", "MemoryBackend",
           "RouterState", "WanBackend", "profile", "run_emulator"]
