"""Fixtures of the ops tests: a ControlServer with recording callbacks (the broker is
tests/conftest.py's)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemon.control.server import ControlServer
from daemon.model import OperatorCommand, RejectedCommand
from tests.harness import wait_until_sync

# Bounds the wait for a ControlServer (in its thread) to create its socket.
SERVER_START_TIMEOUT = 5.0


@dataclass
class Recorder:
    """The daemon's side of the control socket, recording what reached it."""

    status: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(
        default_factory=lambda: {"accepted": True, "detail": "queued"})
    submitted: list[OperatorCommand] = field(default_factory=list)
    waits: list[float | None] = field(default_factory=list)
    rejected: list[RejectedCommand] = field(default_factory=list)

    def get_status(self) -> dict[str, Any]:
        return self.status

    async def submit(self, cmd: OperatorCommand, wait: float | None) -> dict[str, Any]:
        self.submitted.append(cmd)
        self.waits.append(wait)
        return dict(self.verdict)

    def audit_rejected(self, rej: RejectedCommand) -> None:
        self.rejected.append(rej)

    def server(self, path: Path, *, group: str | None = None,
               read_timeout: float = 5.0) -> ControlServer:
        return ControlServer(path, group=group, status=self.get_status, submit=self.submit,
                             audit_rejected=self.audit_rejected, read_timeout=read_timeout)


def accepts(path: Path) -> bool:
    """True once something listens on `path` (a stale file from a test does not count)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def server_in_thread(recorder: Recorder, path: Path) -> Iterator[None]:
    """A ControlServer on its own event loop in a thread (for the synchronous CLI)."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(recorder.server(path).serve(stop))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="control-server", daemon=True)
    thread.start()
    try:
        # listening, not merely bound: mode and group are set between the two, and a test
        # that changes this process's credentials next must not race them
        wait_until_sync(lambda: accepts(path), SERVER_START_TIMEOUT,
                        f"the control server to listen on {path}")
        yield
    finally:
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(SERVER_START_TIMEOUT)
        if errors:
            raise errors[0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
