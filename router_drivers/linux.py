"""`linux`: a Linux box as the router, driven with iproute2 here or in a network namespace.

`RouterSettings.interface` is the WAN interface, `.netns` the namespace (`ip -n NS`).
There is no separate save step: the three `ip` commands are the apply, and the read-back
asks the kernel. The lab runs this against its `router` namespace.
"""

from __future__ import annotations

import logging

from . import iproute
from .base import RouterSettings, WanConfig
from .errors import RouterMismatch
from .transcript import Transcript

log = logging.getLogger(__name__)


class LinuxDriver:
    name = "linux"

    def __init__(self, settings: RouterSettings) -> None:
        if not settings.interface:
            raise ValueError("the linux driver needs RouterSettings.interface")
        self.interface = settings.interface
        self.netns = settings.netns
        self._transcript = Transcript()

    def transcript(self) -> str:
        return self._transcript.text()

    async def _read(self) -> WanConfig:
        where = f" (netns {self.netns})" if self.netns else ""
        wan = await iproute.read_wan(self.interface, self.netns)
        self._transcript.note(f"read {self.interface}{where}: {wan}")
        return wan

    async def read_wan(self) -> WanConfig:
        self._transcript = Transcript()
        return await self._read()

    def plan(self, current: WanConfig, target: WanConfig) -> list[str]:
        """The `ip` commands `apply_wan(target)` would run, for `--dry-run`."""
        if current == target:
            return []
        return [" ".join(a) for a in iproute.apply_commands(self.interface, target, self.netns)]

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        self._transcript = Transcript()
        current = await self._read()
        if current == target:
            self._transcript.note(f"already at {target}: nothing changed")
            return current
        for argv in iproute.apply_commands(self.interface, target, self.netns):
            self._transcript.sent(" ".join(argv))
        await iproute.apply_wan(self.interface, target, self.netns)
        back = await self._read()
        if back != target:
            raise RouterMismatch("read back", f"asked for {target}, the kernel reports {back}",
                                 saved=True)
        log.info("router linux: %s now %s", self.interface, back)
        return back
