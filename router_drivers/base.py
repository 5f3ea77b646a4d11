"""The router driver interface (DESIGN §5) and the small types that cross it.

A driver knows how to read and change one router's WAN addressing. It knows nothing of
failover states: the daemon decides *when*; a driver only does *what* and reports what it
saw. Each call opens its own session and closes it: routers are touched rarely and a
fresh login is the most predictable state to start from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class Secret:
    """A string that never shows itself in repr/str/logs. Use `.reveal()` to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class WanConfig:
    """The WAN addressing of the router as one value: what we ask for and what we read."""

    address: IPv4Address
    netmask: IPv4Address
    gateway: IPv4Address

    @classmethod
    def parse(cls, address: str, netmask: str, gateway: str) -> WanConfig:
        return cls(IPv4Address(address), IPv4Address(netmask), IPv4Address(gateway))

    @property
    def prefixlen(self) -> int:
        return IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen

    def as_dict(self) -> dict[str, str]:
        return {"address": str(self.address), "netmask": str(self.netmask),
                "gateway": str(self.gateway)}

    def __str__(self) -> str:
        try:
            return f"{self.address}/{self.prefixlen} via {self.gateway}"
        except ValueError:  # a netmask as odd as some routers print: show it as it is
            return f"{self.address} netmask {self.netmask} via {self.gateway}"


@dataclass(frozen=True)
class RouterSettings:
    """Everything a driver needs to reach and log in to one router.

    The daemon builds this from its validated config; drivers take what they use.
    `dialogue` holds user overrides of a console's dialogue data (labels, menu path,
    command templates, prompts), merged over the driver's defaults.
    """

    host: str = "192.168.1.1"
    port: int = 23
    username: str | None = None
    password: Secret | None = None
    connect_timeout: float = 5.0   # bounds the TCP/telnet/SSH connect + negotiation
    step_timeout: float = 10.0     # bounds each wait for one expected prompt or screen
    restart_timeout: float = 90.0  # bounds waiting for a router that restarts after a save
    dialogue: Mapping[str, Any] = field(default_factory=dict)
    # ssh driver
    key_file: Path | None = None
    known_hosts: Path | None = None
    # linux driver
    interface: str | None = None
    netns: str | None = None
    # dry-run driver: the config it pretends the router has at start
    initial: WanConfig | None = None


@dataclass(frozen=True, slots=True)
class RouterReading:
    """What the router runs and, where its console shows it, what it has saved."""

    running: WanConfig
    saved: WanConfig | None = None  # None: this console cannot show its saved config

    def at(self, target: WanConfig) -> bool:
        return self.running == target and self.saved in (None, target)

    def __str__(self) -> str:
        if self.saved is None or self.saved == self.running:
            return f"runs {self.running}" + ("" if self.saved is None else " (saved too)")
        return f"runs {self.running} but saves {self.saved}"


@runtime_checkable
class RouterDriver(Protocol):
    """What every driver does (DESIGN §5). The calls raise `RouterError` on any doubt.

    Every driver in this package is built on `skeleton.ApplySkeleton`, which implements
    `apply_wan` once: read (running and, where the console shows it, saved), no-op check,
    write, restart when the console needs one, read back, compare, put back on a mismatch.
    """

    name: str

    @property
    def timings(self) -> Mapping[str, float]:
        """After each apply_wan: seconds spent in "dialogue", "restart_wait", "read_back"."""
        ...

    async def read_wan(self) -> WanConfig:
        """The WAN address, netmask and default gateway the router runs."""
        ...

    async def read_state(self) -> RouterReading:
        """What the router runs and, where its console can show it, what it has saved."""
        ...

    def plan(self, current: RouterReading | WanConfig, target: WanConfig) -> list[str]:
        """What `apply_wan(target)` would send from `current`, for `--dry-run`."""
        ...

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        """Set the WAN config, save it only if every step was accepted, restart when the
        console runs a saved change only after a restart, read back what it runs.

        Returns the read-back. Raises `RouterMismatch` when the read-back differs (after
        putting the previous config back once; the message says what the router now
        saves and runs), `RouterRefused` when a step was refused (nothing saved),
        `RouterTimeout` when the router stopped answering. Applying the config the router
        already runs and saves changes nothing.
        """
        ...

    def transcript(self) -> str:
        """The masked text of the last session (what was sent and seen), for support."""
        ...
