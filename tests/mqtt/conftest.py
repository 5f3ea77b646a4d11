"""Fixtures for the MQTT tests: a real mosquitto on a loopback port, a watching subscriber,
and helpers to run a publisher and to build snapshots and events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
import structlog

from daemon.config import MqttConfig
from daemon.lab.mosquitto import Mosquitto
from daemon.model import (
    AuditEvent,
    Circuit,
    EventKind,
    LinkHealth,
    MailPath,
    ProbeSummary,
    State,
    StateSnapshot,
)
from daemon.publish.mqtt import MqttPublisher
from tests.harness import stopped

Logs = list[MutableMapping[str, Any]]

# Bounds every wait for a message in these tests, so that a failure never hangs.
WAIT = 10.0
# Bounds the subscriber's connect and subscribe.
SUB_TIMEOUT = 5.0


@pytest.fixture
def own_broker() -> Iterator[Mosquitto]:
    """A broker of this test's own, for tests that kill and restart it."""
    b = Mosquitto()
    try:
        b.start()
        yield b
    finally:
        b.stop()


@pytest.fixture
def logs() -> Iterator[Logs]:
    """The publisher's structlog events while the test runs (event, log_level, keys)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def errors_in(logs: Logs) -> list[str]:
    """The error events, each as one line of its event name and key=value pairs."""
    return [" ".join([e["event"], *(f"{k}={v}" for k, v in e.items() if k != "event")])
            for e in logs if e["log_level"] in ("error", "critical")]


@pytest.fixture
def prefix() -> str:
    return f"dslfailover/t{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        import json
        return json.loads(self.payload)


class Watcher:
    """A separate aiomqtt client that records everything on the topics it watches."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[Received] = []
        self._changed = asyncio.Condition()

    async def _pump(self) -> None:
        async for m in self.client.messages:
            raw = m.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
            async with self._changed:
                self.messages.append(Received(m.topic.value, payload, m.retain))
                self._changed.notify_all()

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(self, pred: Callable[[list[Received]], bool],
                       timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: pred(self.messages))

    async def wait_payload(self, topic: str, payload: bytes, *, after: int = 0,
                           timeout: float = WAIT) -> Received:
        """The first message on `topic` with `payload`, at index `after` or later."""
        found: list[Received] = []

        def pred(ms: list[Received]) -> bool:
            found[:] = [m for m in ms[after:] if m.topic == topic and m.payload == payload]
            return bool(found)

        await self.wait_for(pred, timeout)
        return found[0]


@contextlib.asynccontextmanager
async def watching(b: Mosquitto, *topics: str, **kw: Any) -> AsyncIterator[Watcher]:
    client = aiomqtt.Client("127.0.0.1", b.port, timeout=SUB_TIMEOUT, **kw)
    async with client:
        w = Watcher(client)
        for t in topics:
            await client.subscribe(t, qos=1, timeout=SUB_TIMEOUT)
        pump = asyncio.create_task(w._pump(), name="watcher-pump")
        try:
            yield w
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await pump


@contextlib.asynccontextmanager
async def running(pub: MqttPublisher) -> AsyncIterator[asyncio.Event]:
    """Run `pub` in a task; on exit set stop and wait (bounded) for `run` to return."""
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop), name="publisher-under-test")
    try:
        yield stop
    finally:
        await stopped(task, stop, WAIT)


def mqtt_config(b: Mosquitto, **kw: Any) -> MqttConfig:
    kw.setdefault("connect_timeout", 2.0)
    return MqttConfig(host="127.0.0.1", port=b.port, **kw)


_seq = itertools.count(1)
AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def snapshot(state: State = State.PRIMARY, *, seq: int | None = None,
             link: LinkHealth = LinkHealth.UP, reason: str = "test") -> StateSnapshot:
    circuit = Circuit.BACKUP if state is State.BACKUP else Circuit.PRIMARY
    return StateSnapshot(state=state, circuit=circuit, primary_link=link,
                         mail_path=MailPath.OK, since=AT, reason=reason,
                         seq=next(_seq) if seq is None else seq)


def event(seq: int, *, reason: str = "test") -> AuditEvent:
    return AuditEvent(seq=seq, at=AT, kind=EventKind.TRANSITION, from_state=State.PRIMARY,
                      to_state=State.FAILING_OVER, reason=reason, detail={"n": seq})


def probe(name: str, *, ok: bool = True, loss: float = 0.0,
          rtt_ms: float | None = 1.5) -> ProbeSummary:
    return ProbeSummary(name=name, ok=ok, loss=loss, rtt_ms=rtt_ms, at=AT)
