"""Fixtures for the notice tests: a JSON endpoint on 127.0.0.1 that records what Apprise
POSTs, a port that accepts and never answers, a movable clock and wall time, and a
running `Notices` publisher. Every address is loopback; every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon.config_outside import NotifyConfig
from daemon.lab.launcher import free_port
from daemon.model import AuditEvent, EventKind, State
from daemon.publish.notify import GOODBYE_TIMEOUT, QUEUE_SIZE, Notices
from router_drivers import Secret
from tests.harness import stopped, wait_until

Logs = list[MutableMapping[str, Any]]

HOST = "127.0.0.1"
# A token in every test URL (basic auth of the json:// URL): it must appear in no log.
TOKEN = "Zq9s3cretTOKEN"
# Bounds each wait for a notice to reach (or fail at) an endpoint.
WAIT = 10.0
# Bounds run()'s end once quiet is set: its own goodbye bound and a margin.
RUN_STOP = GOODBYE_TIMEOUT + 2.0
# How often the endpoint's serve_forever looks for a shutdown (the stop's latency).
POLL = 0.05


@dataclass(frozen=True)
class Posted:
    path: str
    auth: str | None
    body: dict[str, Any]


class Endpoint:
    """An HTTP server on 127.0.0.1 that records each POSTed JSON body and answers 200."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(HOST)
        self.posted: list[Posted] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "notify") -> str:
        return f"json://user:{TOKEN}@{HOST}:{self.port}/{path}"

    def start(self) -> Endpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size) or b"{}")
                with endpoint._lock:
                    endpoint.posted.append(
                        Posted(self.path, self.headers.get("Authorization"), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass   # quiet test output

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,),
                                        name=f"endpoint-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(WAIT)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p.body for p in self.posted]

    async def wait_for(self, count: int, what: str = "notices") -> list[dict[str, Any]]:
        """The bodies once at least `count` have come (AssertionError after WAIT)."""
        await wait_until(lambda: len(self.bodies()) >= count, WAIT,
                         f"{count} {what} at 127.0.0.1:{self.port}", detail=self.bodies)
        return self.bodies()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint().start()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def silent() -> Iterator[str]:
    """The URL of a port that accepts connections (the kernel's backlog) and never
    answers; Apprise's own read timeout (rto) is longer than the tests' [notify] timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, 0))
        sock.listen(16)
        yield f"json://user:{TOKEN}@{HOST}:{sock.getsockname()[1]}/hang?rto=5&cto=2"
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (under Apprise) would send through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def logs() -> Iterator[Logs]:
    """The notice publisher's structlog events while the test runs."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def events_named(logs: Logs, name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


class Clock:
    """The monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def notices(urls: list[str], *, clock: Clock | None = None,
            wall: datetime | None = None, queue_size: int = QUEUE_SIZE,
            **cfg: Any) -> Notices:
    """A publisher for `urls` with [notify] `cfg` (timeout 1 s unless given), a movable
    clock and a fixed local wall time (noon unless given)."""
    cfg.setdefault("timeout", 1.0)
    at = wall or datetime(2024, 5, 1, 12, 0)
    return Notices(NotifyConfig(urls_file=Path("urls"), **cfg), [Secret(u) for u in urls],
                   site="office", clock=clock or Clock(), wall=lambda: at,
                   queue_size=queue_size)


@contextlib.asynccontextmanager
async def running(pub: Notices) -> AsyncIterator[asyncio.Task[None]]:
    """`pub.run(quiet)` in a task; afterwards quiet is set and the task must end."""
    quiet = asyncio.Event()
    task = asyncio.create_task(pub.run(quiet), name="notify-under-test")
    try:
        yield task
    finally:
        await stopped(task, quiet, RUN_STOP)


AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def transition(reason: str = "primary down: 0 of 3 targets answer") -> AuditEvent:
    return AuditEvent(7, AT, EventKind.TRANSITION, State.PRIMARY, State.FAILING_OVER,
                      reason, {"loss": 1.0})


def alarm(reason: str = "target 192.0.2.1 lost 40%") -> AuditEvent:
    return AuditEvent(8, AT, EventKind.PROBE_ALARM, None, None, reason)
