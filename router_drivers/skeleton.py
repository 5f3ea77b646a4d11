"""One apply for every driver: read, no-op check, write, restart, read back, compare.

Real Netopia units apply a change only after a restart (DESIGN §5): between `save` and
the restart the *saved* config differs from the *running* one. `ApplySkeleton` owns that
sequence once, so that every driver keeps the same promises:

- "already at target" means the router both runs and saves the target (where the console
  can show what it saves);
- after a restart the running config is read in a fresh session and compared; when it is
  not the target, the previous config is put back once (saved and running) and the error
  says what the router now saves and runs;
- a session dropped before the save (an idle timeout) is a reconnect, not a failure;
- `timings` says how long the dialogue, the restart wait and the read-back took.

A driver supplies the console-specific steps: a logged-in session, `_read`, `_write` and,
when its console needs one, `_restart`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import structlog

from .base import RouterReading, RouterSettings, WanConfig
from .errors import RouterConnectError, RouterError, RouterMismatch, RouterTimeout
from .transcript import Masker, Transcript

log = structlog.get_logger(__name__)

# Reconnect attempts while the router restarts: the first pause, and the longest. Tight:
# a refused connect on the LAN costs nothing, and every second between the router coming
# back and our noticing is a second longer on the wrong circuit (the bench measures it).
RECONNECT_FIRST, RECONNECT_MAX = 0.05, 0.1

S = TypeVar("S")


class ApplySkeleton(ABC, Generic[S]):
    """The base of every driver (DESIGN §5): `read_wan`, `read_state`, `plan`, `apply_wan`."""

    name: str

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        self._transcript = Transcript(Masker([settings.password]))
        self.timings: dict[str, float] = {}

    # --- what a driver supplies ---------------------------------------------------------

    @abstractmethod
    def _session(self) -> contextlib.AbstractAsyncContextManager[S]:
        """A connected, logged-in session; closed on exit."""

    @abstractmethod
    async def _read(self, s: S) -> RouterReading:
        """Read the running config (and the saved one where the console shows it)."""

    @abstractmethod
    async def _write(self, s: S, current: RouterReading, target: WanConfig) -> None:
        """Set and save `target`. Raise `RouterError` (saved=False) when anything before
        the save was refused or unexpected: then nothing may be left saved."""

    @abstractmethod
    def _write_plan(self, current: RouterReading, target: WanConfig) -> list[str]:
        """What `_write` would send, for `--dry-run`."""

    def restarts(self) -> bool:
        """The console runs a saved change only after a restart."""
        return False

    async def _restart(self, s: S) -> None:
        """Ask the router to restart; return once it has dropped the session."""
        raise NotImplementedError

    def _restart_plan(self) -> list[str]:
        return []

    # --- the interface ------------------------------------------------------------------

    def transcript(self) -> str:
        return self._transcript.text()

    def mask(self, text: str) -> str:
        """`text` with this router's secrets masked."""
        return self._transcript.mask(text)

    def session(self) -> contextlib.AbstractAsyncContextManager[S]:
        """A logged-in session recorded in the transcript (for `router explore`)."""
        return self._session()

    def _new_transcript(self) -> None:
        self._transcript = Transcript(self._transcript.mask)

    async def read_state(self) -> RouterReading:
        """What the router runs and saves, in one session."""
        self._new_transcript()
        async with self._session() as s:
            reading = await self._read(s)
        self._transcript.note(f"read: {reading}")
        return reading

    async def read_wan(self) -> WanConfig:
        """The WAN config the router runs."""
        return (await self.read_state()).running

    def plan(self, current: RouterReading | WanConfig, target: WanConfig) -> list[str]:
        """What `apply_wan(target)` would do from `current`; nothing is sent."""
        if isinstance(current, WanConfig):
            current = RouterReading(current)
        steps: list[str] = []
        if self._needs_write(current, target):
            steps += self._write_plan(current, target)
        if self._needs_restart(current, target):
            steps += self._restart_plan()
            steps.append(f"wait up to {self.settings.restart_timeout:g}s for the router to "
                         "come back, log in again, read what it runs")
        return steps

    def _needs_write(self, current: RouterReading, target: WanConfig) -> bool:
        return (current.saved if current.saved is not None else current.running) != target

    def _needs_restart(self, current: RouterReading, target: WanConfig) -> bool:
        return self.restarts() and current.running != target

    async def apply_wan(self, target: WanConfig) -> WanConfig:
        self._new_transcript()
        self.timings = {"dialogue": 0.0, "restart_wait": 0.0, "read_back": 0.0}
        started = time.monotonic()
        try:
            before, back = await self._change(target)
        finally:
            self.timings["dialogue"] = round(self.timings["dialogue"] or
                                             time.monotonic() - started, 3)
        if back is None:
            return before.running
        if back.at(target):
            log.info("router_wan_applied", router=self.name, wan=str(back.running))
            return back.running
        raise await self._put_back(before, back, target)

    async def _change(self, target: WanConfig) -> tuple[RouterReading, RouterReading | None]:
        """Write (reconnecting once after an idle drop), restart, read back.

        Returns the reading before, and the read-back (None when nothing was needed).
        """
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                async with self._session() as s:
                    before = await self._read(s)
                    self._transcript.note(f"read: {before}")
                    write = self._needs_write(before, target)
                    restart = self._needs_restart(before, target)
                    if not write and not restart:
                        self._transcript.note(
                            f"already at {target}: nothing changed, nothing saved")
                        return before, None
                    if write:
                        self._transcript.note(f"changing: {before} -> {target}")
                        await self._write(s, before, target)
                        self._transcript.note("saved")
                    self.timings["dialogue"] = round(time.monotonic() - started, 3)
                    if not restart:
                        t0 = time.monotonic()
                        back = await self._read(s)
                        self.timings["read_back"] = round(time.monotonic() - t0, 3)
                        self._transcript.note(f"read back: {back}")
                        return before, back
                    restart_started = time.monotonic()
                    self._transcript.note("restarting the router to run the saved config")
                    await self._restart(s)
                break
            except RouterConnectError as exc:
                if exc.saved or attempt == 2:
                    raise
                # the console dropped us before anything was saved (an idle timeout):
                # a fresh session starts the same steps again
                self._transcript.note(f"session lost before the save ({exc.message}); "
                                      "logging in again")
        back = await self._come_back(restart_started)
        return before, back

    async def _come_back(self, restart_started: float) -> RouterReading:
        """Reconnect (with backoff) until the router is back; read what it runs now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.restart_timeout
        pause = RECONNECT_FIRST
        last: RouterError | None = None
        while loop.time() < deadline:
            try:
                async with self._session() as s:
                    self.timings["restart_wait"] = round(time.monotonic() - restart_started, 3)
                    t0 = time.monotonic()
                    back = await self._read(s)
                    self.timings["read_back"] = round(time.monotonic() - t0, 3)
                self._transcript.note(f"back after the restart: {back}")
                return back
            except (RouterConnectError, RouterTimeout) as exc:
                last = exc
                await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
                pause = min(pause * 2, RECONNECT_MAX)
        raise RouterTimeout("reconnect after restart", "saved, but the router did not come "
                            f"back within {self.settings.restart_timeout:g}s (router."
                            f"restart_timeout; last try: {last.message if last else '-'})",
                            last.seen if last else "", saved=True)

    async def _put_back(self, before: RouterReading, back: RouterReading,
                        target: WanConfig) -> RouterError:
        """Once: restore the config the router ran before, so saved equals running."""
        asked = f"asked for {target}; after the apply the router {back}"
        previous = before.running
        self._transcript.note(f"{asked}; putting the previous config {previous} back")
        log.warning("router_read_back_differs_putting_back", router=self.name, asked=str(target),
                    read_back=str(back), previous=str(previous))
        try:
            _, now = await self._change(previous)
        except RouterError as exc:
            return RouterMismatch("read back", f"{asked}. Putting the previous config "
                                  f"{previous} back failed at {exc.step}: {exc.message}; "
                                  f"the router last {back}", exc.seen, saved=True)
        now = now or before
        where = "the previous config is back" if now.at(previous) else "still wrong"
        return RouterMismatch("read back", f"{asked}. {where}: the router now {now}",
                              saved=not now.at(previous))


@contextlib.asynccontextmanager
async def no_session() -> AsyncIterator[None]:
    """For drivers with nothing to log in to (linux, dry-run)."""
    yield None
