"""What an emulated router knows: its options, its saved WAN config, where it applies it."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .. import iproute
from ..base import WanConfig

log = logging.getLogger(__name__)

Console = Literal["menu", "cli"]
# Where a test can make the emulator stop answering mid-dialogue.
HangPoint = Literal["login", "menu", "set", "save"]

# Bounds the --apply-command hook (the lab re-keys its tunnel with it).
HOOK_TIMEOUT = 30.0

DEFAULT_LABELS = {"address": "Ethernet B IP Address", "netmask": "Ethernet B Subnet Mask",
                  "gateway": "Default IP Gateway"}
DEFAULT_SET_COMMANDS = {"address": "set ip ethernet B address", "netmask":
                        "set ip ethernet B netmask", "gateway": "set ip gateway"}


@dataclass
class EmulatorOptions:
    """How the emulated router behaves; the defaults are a friendly, healthy router."""

    username: str | None = None       # menu: Superuser name; cli: asks login: first
    password: str | None = None       # None: no password asked
    max_tries: int = 3                # wrong passwords before a lockout
    lockout: float = 30.0             # seconds it refuses logins after max_tries
    restart_delay: float | None = None  # menu: a save asks to restart; away this long
    hang_at: HangPoint | None = None  # stop answering at this point of the dialogue
    refuse: frozenset[str] = frozenset()  # fields ("gateway", ...) whose new value it refuses
    ignore: frozenset[str] = frozenset()  # fields it accepts but silently does not store
    fragment: bool = True             # send output in small pieces, as a slow link does
    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    set_commands: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SET_COMMANDS))
    model: str = "Netopia-3000"
    serial: str = "9437188"


class WanBackend(Protocol):
    """Where a saved WAN config goes: memory, or the interface of this namespace."""

    async def apply(self, wan: WanConfig) -> None: ...


class MemoryBackend:
    async def apply(self, wan: WanConfig) -> None:
        return None


class IpBackend:
    """Really sets `iface`'s address and the default route, then runs an optional hook."""

    def __init__(self, iface: str, hook: str | None = None) -> None:
        self.iface = iface
        self.hook = hook

    async def read(self) -> WanConfig:
        return await iproute.read_wan(self.iface)

    async def apply(self, wan: WanConfig) -> None:
        await iproute.apply_wan(self.iface, wan)
        if self.hook:
            argv = shlex.split(self.hook.format(
                prefixlen=wan.prefixlen, iface=self.iface, **wan.as_dict()))
            proc = await asyncio.create_subprocess_exec(*argv)
            try:
                async with asyncio.timeout(HOOK_TIMEOUT):
                    rc = await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
                log.error("apply hook %s did not finish in %ss", argv[0], HOOK_TIMEOUT)
                return
            if rc != 0:
                log.error("apply hook %s exited %s", argv[0], rc)


@dataclass
class RouterState:
    """The emulated router's memory, shared by all its sessions. Tests read it."""

    console: Console
    saved: WanConfig
    options: EmulatorOptions = field(default_factory=EmulatorOptions)
    backend: WanBackend = field(default_factory=MemoryBackend)
    saves: int = 0                  # successful saves
    sessions: int = 0               # connections accepted
    failed_logins: int = 0
    locked_until: float = 0.0       # loop time
    received: list[str] = field(default_factory=list)  # commands and field edits, never secrets
    restart: Callable[[], Awaitable[None]] | None = None  # set by the server

    async def save(self, wan: WanConfig) -> None:
        """Store what was asked (except the fields it ignores) and apply it."""
        stored = wan
        if self.options.ignore:
            values = {k: (self.saved.as_dict()[k] if k in self.options.ignore else v)
                      for k, v in wan.as_dict().items()}
            stored = WanConfig.parse(**values)
        self.saved = stored
        self.saves += 1
        await self.backend.apply(stored)
