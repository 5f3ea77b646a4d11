"""A driver that changes nothing: it remembers the WAN config it was told and logs.

Used by `--dry-run`, by the core tests and by anyone trying the daemon without a router.
"""

from __future__ import annotations

import contextlib

import structlog

from .base import RouterReading, RouterSettings, WanConfig
from .errors import RouterError
from .skeleton import ApplySkeleton, no_session

log = structlog.get_logger(__name__)


class DryRunDriver(ApplySkeleton[None]):
    name = "dry-run"

    def __init__(self, settings: RouterSettings) -> None:
        super().__init__(settings)
        self._current = settings.initial

    def _session(self) -> contextlib.AbstractAsyncContextManager[None]:
        return no_session()

    async def _read(self, s: None) -> RouterReading:
        if self._current is None:
            raise RouterError("read_wan", "the dry-run driver has no initial WAN config")
        return RouterReading(self._current)

    async def _write(self, s: None, current: RouterReading, target: WanConfig) -> None:
        self._transcript.note(f"would set address, netmask, gateway to {target} and save")
        log.info("dry_run_would_apply", wan=str(target), was=str(current.running))
        self._current = target

    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        return [f"set WAN {target} and save"]
