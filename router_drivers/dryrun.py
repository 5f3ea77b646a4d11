"""A driver that changes nothing: it remembers the WAN config it was told and logs.

Used by `--dry-run`, by the core tests and by anyone trying the daemon without a router.
"""

from __future__ import annotations

import logging

from .base import RouterSettings, WanConfig
from .errors import RouterError

log = logging.getLogger(__name__)


class DryRunDriver:
    name = "dry-run"

    def __init__(self, settings: RouterSettings) -> None:
        self._current = settings.initial
        self._lines: list[str] = []

    async def read_wan(self) -> WanConfig:
        if self._current is None:
            raise RouterError("read_wan", "the dry-run driver has no initial WAN config")
        self._lines = [f"read_wan -> {self._current}"]
        return self._current

    def plan(self, current: WanConfig, target: WanConfig) -> list[str]:
        return [] if current == target else [f"set WAN {target} and save"]

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        if self._current == target:
            self._lines = [f"apply_wan {target}: already there, nothing changed"]
        else:
            self._lines = [f"apply_wan {target}: would set address, netmask, gateway and save"]
            log.info("dry-run: would apply WAN %s (was %s)", target, self._current)
            self._current = target
        return target

    def transcript(self) -> str:
        return "\n".join(self._lines) + "\n"
