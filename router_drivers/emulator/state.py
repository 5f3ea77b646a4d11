"""What an emulated router knows: its options, its saved and running WAN config, where it
applies it.

Like the real units (DESIGN §5), a save changes the *saved* config only; the router runs
it after a restart (`restart_to_apply`). The restart drops every session and keeps the
router away for `restart_delay` seconds, routing nothing (`halt`: in the lab the WAN
address is gone); then the running config is applied to the backend
(memory, or the namespace's interface in the lab).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from .. import iproute
from ..base import WanConfig

log = structlog.get_logger(__name__)

Console = Literal["menu", "cli"]
# Where a test can make the emulator stop answering (or drop the session) mid-dialogue.
HangPoint = Literal["login", "menu", "set", "save"]
SaveModel = Literal["item", "escape", "return"]

# Bounds the --apply-command hook (the lab re-keys its tunnel with it).
HOOK_TIMEOUT = 30.0

DEFAULT_LABELS = {"address": "Ethernet B IP Address", "netmask": "Ethernet B Subnet Mask",
                  "gateway": "Default IP Gateway"}
DEFAULT_SET_COMMANDS = {"address": "set ip ethernet B address", "netmask":
                        "set ip ethernet B netmask", "gateway": "set ip gateway"}
# The menu items and screen titles of the menu console, by role.
DEFAULT_MENU = {
    "main_title": "Netopia R9100 Main Menu",
    "sysconf": "System Configuration...", "sysconf_title": "System Configuration",
    "netproto": "Network Protocols Setup...", "netproto_title": "Network Protocols Setup",
    "ipsetup": "IP Setup...", "ipsetup_title": "IP Setup",
    "save": "Save Changes...", "confirm_title": "Save Changes",
    "utilities": "Utilities & Diagnostics...", "utilities_title": "Utilities & Diagnostics",
    "restart": "Restart System", "status": "Quick View...", "status_title": "Quick View",
}


@dataclass
class EmulatorOptions:
    """How the emulated router behaves; the defaults follow Netopia's documents (§5)."""

    username: str | None = None       # menu: Superuser name; cli: asks login: first
    password: str | None = None       # None: no password asked
    max_tries: int = 3                # wrong passwords before a lockout
    lockout: float = 30.0             # seconds it refuses logins after max_tries
    restart_to_apply: bool = True     # a save changes the saved config; a restart runs it
    restart_delay: float = 0.2        # how long a restart keeps the router away
    boot_keeps_old: bool = False      # after a restart it still runs the old config
    ask_restart: bool = False         # menu: after a save it asks "Restart now?"
    hang_at: HangPoint | None = None  # stop answering at this point of the dialogue
    idle_drop_at: HangPoint | None = None  # once: an idle-timeout disconnect at this point
    refuse: frozenset[str] = frozenset()  # fields ("gateway", ...) whose new value it refuses
    ignore: frozenset[str] = frozenset()  # fields it accepts but silently does not store
    fragment: bool = True             # send output in small pieces, as a slow link does
    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    status_labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    set_commands: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SET_COMMANDS))
    model: str = "Netopia-3000"
    serial: str = "9437188"
    # menu console
    menu: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MENU))
    banner: str | None = None         # a line above every screen's title (model, firmware)
    extra_level: bool = False         # IP Setup under Network Protocols Setup (R-series 4.x)
    save_model: SaveModel = "item"    # Save item + confirm | Esc + Y/N | Return commits
    footer: bool = True               # "Return/Enter accepts * Tab toggles * ESC cancels"
    wrap: bool = True                 # Down on the last item goes round to the first
    # cli console
    page_lines: int | None = None     # long output stops at "--More--" every N lines
    confirm: bool = False             # save and restart ask "Are you sure (y/n)?"


# Firmware profiles: the documented variants (DESIGN §5, NETOPIA.md), as option sets.
PROFILES: dict[str, tuple[Console, dict[str, object]]] = {
    # R-series menu, restart to apply, a Save item with a confirm screen, Restart System
    # under Utilities & Diagnostics, the 8.7 footer
    "r9100": ("menu", {}),
    # R-series 4.x: a banner above the title, Network Protocols Setup one level deeper,
    # Escape asks "Save changes? (Y/N)", no footer, menus that do not wrap
    "r4x": ("menu", {"banner": "Netopia R7200 v4.6.2  (c) Netopia, Inc.", "extra_level": True,
                     "save_model": "escape", "footer": False, "wrap": False}),
    # firmware where Return commits each field: no save step at all
    "r8x-return": ("menu", {"save_model": "return"}),
    # an unmapped unit: other labels, another path, other titles (what `router explore`
    # is for)
    "relabelled": ("menu", {
        "banner": "NETOPIA R910 Firmware 5.4.1", "wrap": False, "footer": False,
        "labels": {"address": "WAN IP Address", "netmask": "WAN Subnet Mask",
                   "gateway": "WAN Gateway Address"},
        "status_labels": {"address": "WAN Address", "netmask": "WAN Netmask",
                          "gateway": "Gateway"},
        "menu": {**DEFAULT_MENU, "main_title": "Main Menu",
                 "sysconf": "Advanced Setup...", "sysconf_title": "Advanced Setup",
                 "ipsetup": "WAN IP Settings...", "ipsetup_title": "WAN IP Settings",
                 "save": "Save Settings...", "confirm_title": "Save Settings",
                 "utilities": "Maintenance...", "utilities_title": "Maintenance",
                 "restart": "Restart System", "status": "Router Status...",
                 "status_title": "Router Status"}}),
    # an old console that applies a save at once and never restarts
    "immediate": ("menu", {"restart_to_apply": False}),
    # SOC OS 7.x CLI: restart to apply, the two-line interface listing
    "socos": ("cli", {}),
    # SOC OS with paging and confirmation questions
    "socos-paged": ("cli", {"page_lines": 4, "confirm": True}),
    "socos-immediate": ("cli", {"restart_to_apply": False}),
}


def profile(name: str, **overrides: object) -> tuple[Console, EmulatorOptions]:
    """The console and options of a firmware profile, with `overrides` on top."""
    try:
        console, values = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown emulator profile {name!r} (known: "
                         f"{', '.join(sorted(PROFILES))})") from None
    return console, EmulatorOptions(**{**values, **overrides})  # type: ignore[arg-type]


class WanBackend(Protocol):
    """Where the running WAN config goes: memory, or the interface of this namespace."""

    async def apply(self, wan: WanConfig) -> None: ...

    async def halt(self) -> None:
        """The router is away (restarting): nothing is routed until the next apply."""
        ...


class MemoryBackend:
    async def apply(self, wan: WanConfig) -> None:
        return None

    async def halt(self) -> None:
        return None


class IpBackend:
    """Really sets `iface`'s address and the default route, then runs an optional hook."""

    def __init__(self, iface: str, hook: str | None = None) -> None:
        self.iface = iface
        self.hook = hook

    async def read(self) -> WanConfig:
        return await iproute.read_wan(self.iface)

    async def halt(self) -> None:
        # a restarting unit routes nothing: its WAN address (and the default route
        # through it, and the tunnel bound to it) is gone until it boots
        await iproute.run_ip(f"-4 addr flush dev {self.iface}",
                             iproute.ip_argv(None, "-4", "addr", "flush", "dev", self.iface))

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
                log.error("apply_hook_timed_out", hook=argv[0], timeout=HOOK_TIMEOUT)
                return
            if rc != 0:
                log.error("apply_hook_failed", hook=argv[0], exit_status=rc)


LoginVerdict = Literal["ok", "retry", "locked"]


@dataclass
class RouterState:
    """The emulated router's memory, shared by all its sessions. Tests read it."""

    console: Console
    saved: WanConfig
    options: EmulatorOptions = field(default_factory=EmulatorOptions)
    backend: WanBackend = field(default_factory=MemoryBackend)
    running: WanConfig | None = None  # what it routes with; None: the initial saved config
    saves: int = 0                  # successful saves
    restarts: int = 0               # restarts done (the router came back)
    sessions: int = 0               # connections accepted
    failed_logins: int = 0
    locked_until: float = 0.0       # loop time
    idle_dropped: bool = False      # the one idle-timeout disconnect happened
    open_sessions: int = 0          # connections being served right now
    max_open: int = 0               # the most at once (two means two dialogues overlapped)
    overlaps: int = 0               # times a connection came while another was served
    restarting: bool = False        # away in a restart: not listening
    refusing: bool = False          # its telnet service is off: connections refused
    received: list[str] = field(default_factory=list)  # commands and field edits, never secrets
    restart: Callable[[], Awaitable[None]] | None = None  # set by the server

    def __post_init__(self) -> None:
        if self.running is None:
            self.running = self.saved

    @property
    def runs(self) -> WanConfig:
        assert self.running is not None
        return self.running

    def observed(self) -> dict[str, object]:
        """What a test or the lab's chaos soak reads of this router: its saved and running
        config, its counters, and whether it is away or refusing."""
        return {"saved": self.saved.as_dict(), "running": self.runs.as_dict(),
                "saves": self.saves, "restarts": self.restarts, "sessions": self.sessions,
                "open_sessions": self.open_sessions, "max_open": self.max_open,
                "overlaps": self.overlaps, "restarting": self.restarting,
                "refusing": self.refusing, "hang_at": self.options.hang_at,
                "restart_delay": self.options.restart_delay}

    def locked_out(self, now: float) -> bool:
        """True while logins are refused after too many failures (`now`: loop time)."""
        return now < self.locked_until

    def check_login(self, name: str | None, password: str, now: float) -> LoginVerdict:
        """Judge one login attempt and count it: "ok", "retry", or "locked" (now refused).

        The lockout is set before the console writes anything: a session opened while
        the failure message is still on its way is refused already.
        """
        if name == self.options.username and password == (self.options.password or ""):
            self.failed_logins = 0
            return "ok"
        self.failed_logins += 1
        if self.failed_logins >= self.options.max_tries:
            self.locked_until = now + self.options.lockout
            return "locked"
        return "retry"

    def idle_drop(self, point: HangPoint) -> bool:
        """True once, at `point`, when the options ask for an idle-timeout disconnect."""
        if self.options.idle_drop_at == point and not self.idle_dropped:
            self.idle_dropped = True
            return True
        return False

    async def save(self, wan: WanConfig) -> None:
        """Store what was asked (except the fields it ignores); run it now unless the
        firmware applies a save only at the next restart."""
        stored = wan
        if self.options.ignore:
            values = {k: (self.saved.as_dict()[k] if k in self.options.ignore else v)
                      for k, v in wan.as_dict().items()}
            stored = WanConfig.parse(**values)
        self.saved = stored
        self.saves += 1
        if not self.options.restart_to_apply:
            self.running = stored
            await self.backend.apply(stored)

    async def boot(self) -> None:
        """The end of a restart: the router runs its saved config (unless it is broken)."""
        self.restarts += 1
        if not self.options.boot_keeps_old:
            self.running = self.saved
        await self.backend.apply(self.runs)
