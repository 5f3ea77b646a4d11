"""`linux`: a Linux box as the router, driven with iproute2 here or in a network namespace.

`RouterSettings.interface` is the WAN interface, `.netns` the namespace (`ip -n NS`).
There is no separate save step: the three `ip` commands are the apply, and the read-back
asks the kernel. The lab runs this against its `router` namespace.
"""

from __future__ import annotations

import contextlib

from . import iproute
from .base import RouterReading, RouterSettings, WanConfig
from .skeleton import ApplySkeleton, no_session


class LinuxDriver(ApplySkeleton[None]):
    name = "linux"

    def __init__(self, settings: RouterSettings) -> None:
        if not settings.interface:
            raise ValueError("the linux driver needs RouterSettings.interface")
        super().__init__(settings)
        self.interface = settings.interface
        self.netns = settings.netns

    def _session(self) -> contextlib.AbstractAsyncContextManager[None]:
        return no_session()

    async def _read(self, s: None) -> RouterReading:
        where = f" (netns {self.netns})" if self.netns else ""
        wan = await iproute.read_wan(self.interface, self.netns)
        self._transcript.note(f"read {self.interface}{where}: {wan}")
        return RouterReading(wan)

    async def _write(self, s: None, current: RouterReading, target: WanConfig) -> None:
        for argv in iproute.apply_commands(self.interface, target, self.netns):
            self._transcript.sent(" ".join(argv))
        await iproute.apply_wan(self.interface, target, self.netns)

    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        return [" ".join(a) for a in iproute.apply_commands(self.interface, target, self.netns)]
