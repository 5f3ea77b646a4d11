"""Broker outages: buffering, in-order redelivery after a restart, refused credentials."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest

import daemon.publish.mqtt
from daemon.lab.mosquitto import Mosquitto
from daemon.model import State
from daemon.publish.mqtt import MqttPublisher
from router_drivers import Secret
from tests.harness import free_port, wait_until

from .conftest import WAIT, Logs, errors_in, event, mqtt_config, probe, running, snapshot, watching

PASSWORD = "s3cret-Pa55-do-not-log"


def connected(pub: MqttPublisher, *, flushed: bool = False) -> Awaitable[None]:
    """Until the publisher is connected (and, with `flushed`, every event PUBACKed)."""
    return wait_until(lambda: pub.connected and (not flushed or pub.buffered_events == 0),
                      WAIT, "the publisher connected" + (", its events PUBACKed" * flushed))


def disconnected(pub: MqttPublisher) -> Awaitable[None]:
    return wait_until(lambda: not pub.connected, WAIT, "the publisher to see the broker gone")


def failed_once(logs: Logs) -> Awaitable[None]:
    """Until the publisher has logged a failed connect (nobody listens)."""
    return wait_until(lambda: any(e["event"] == "mqtt_cannot_connect" for e in logs), WAIT,
                      "a failed connect attempt logged", detail=lambda: logs)


@pytest.fixture
def persistent_broker() -> Iterator[Mosquitto]:
    """A broker of this test's own whose sessions survive a clean restart (`pause`)."""
    b = Mosquitto(persistent=True)
    try:
        b.start()
        yield b
    finally:
        b.stop()


async def watcher_session(broker: Mosquitto, topic: str, prefix: str) -> dict[str, Any]:
    """Put a watcher's session (fixed id, QoS 1, not clean) on a persistent broker: from
    now on, through clean restarts, the broker queues what comes on `topic` for it,
    however late the watcher comes back. The kwargs for `watching` to come back."""
    session: dict[str, Any] = {"identifier": f"{prefix}-watcher", "clean_session": False}
    async with watching(broker, topic, **session):
        pass
    return session


async def test_events_from_an_outage_arrive_in_order_after_broker_restart(
        persistent_broker: Mosquitto, prefix: str) -> None:
    broker = persistent_broker
    # the watcher's session is there before the publisher's first message: no race with
    # the publisher's retry after the restart
    session = await watcher_session(broker, f"{prefix}/#", prefix)
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    pub.publish_state(snapshot(State.PRIMARY))
    pub.publish_event(event(1))
    async with running(pub):
        await connected(pub, flushed=True)
        broker.pause()
        await disconnected(pub)
        for seq in range(2, 12):
            pub.publish_event(event(seq))
        pub.publish_state(snapshot(State.BACKUP, seq=99))
        assert pub.buffered_events == 10
        await asyncio.to_thread(broker.start)
        await connected(pub, flushed=True)
        async with watching(broker, **session) as seen:
            await seen.wait_for(lambda ms: len(seen.on(f"{prefix}/event")) >= 11)
            assert [m.json()["seq"] for m in seen.on(f"{prefix}/event")] == list(
                range(1, 12))
            # what came after the restart: after event 1, the last one before the outage
            first = next(n for n, m in enumerate(seen.messages) if m.topic.endswith("/event"))
            after = seen.messages[first + 1:]
            topics = [m.topic for m in after]
            # the state comes at once, before the backlog of events
            assert topics.index(f"{prefix}/state") < topics.index(f"{prefix}/event")
            state = after[topics.index(f"{prefix}/state")].json()
            assert (state["state"], state["seq"]) == ("backup", 99)
            # (a persistent broker may first publish the will it kept, `offline`)
            await seen.wait_payload(f"{prefix}/availability", b"online", after=first + 1)
    assert pub.buffered_events == 0


async def test_retained_state_and_probes_are_republished_after_restart(
        own_broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(own_broker), prefix=prefix, site="s", password=None)
    snap = snapshot(State.PRIMARY)
    pub.publish_state(snap)
    pub.publish_probe(probe("gw"))
    async with running(pub):
        await connected(pub)
        own_broker.restart()  # a fresh broker without persistence has lost everything
        await disconnected(pub)
        await connected(pub)
        async with watching(own_broker, f"{prefix}/#") as late:
            await late.wait_for(lambda ms: len({m.topic for m in ms}) >= 3)
    got = {m.topic: m for m in late.messages}
    assert got[f"{prefix}/state"].retain
    assert got[f"{prefix}/state"].json() == snap.as_dict()
    assert got[f"{prefix}/probe/gw"].json()["ok"] is True
    assert got[f"{prefix}/availability"].payload == b"online"


async def test_publisher_started_while_broker_is_down_delivers_once_it_is_up(
        persistent_broker: Mosquitto, prefix: str, logs: Logs) -> None:
    broker = persistent_broker
    session = await watcher_session(broker, f"{prefix}/event", prefix)
    broker.pause()
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    pub.publish_event(event(1))
    async with running(pub):
        await failed_once(logs)
        assert not pub.connected
        await asyncio.to_thread(broker.start)
        await connected(pub, flushed=True)
        async with watching(broker, **session) as live:
            await live.wait_for(lambda ms: len(ms) >= 1)
        assert live.messages[0].json()["seq"] == 1


async def test_publish_calls_return_at_once_while_broker_is_down(prefix: str,
                                                                  logs: Logs) -> None:
    pub = MqttPublisher(mqtt_config(Mosquitto(port=free_port())), prefix=prefix, site="s",
                        password=None)
    async with running(pub):
        await failed_once(logs)
        started = time.perf_counter()
        for seq in range(1, 1001):
            pub.publish_state(snapshot(seq=seq))
            pub.publish_event(event(seq))
            pub.publish_probe(probe(f"p{seq % 5}"))
        elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # 3000 calls; each is a few dict/deque operations
    assert pub.buffered_events == 1000


@pytest.fixture
def auth_broker() -> Iterator[Mosquitto]:
    b = Mosquitto(port=free_port(), users={"dsl": PASSWORD})
    try:
        b.start()
        yield b
    finally:
        b.stop()


async def test_refused_password_is_logged_once_without_the_password_and_retried(
        auth_broker: Mosquitto, prefix: str, logs: Logs) -> None:
    wrong = "wrong-" + PASSWORD
    pub = MqttPublisher(mqtt_config(auth_broker, username="dsl"), prefix=prefix, site="s",
                        password=Secret(wrong))
    pub.backoff_initial, pub.backoff_max = 0.1, 0.2
    async with running(pub):
        await wait_until(lambda: auth_broker.log_tail(100000).count("not authorised") >= 3,
                         WAIT, "3 refused logins in the broker's log")
        started = time.perf_counter()
        pub.publish_state(snapshot())
        pub.publish_event(event(1))
        assert time.perf_counter() - started < 0.01
        assert not pub.connected
    errors = errors_in(logs)
    assert len(errors) == 1, errors
    message = errors[0]
    assert f"127.0.0.1:{auth_broker.port}" in message
    assert "not authori" in message.lower() or "bad user name" in message.lower()
    assert PASSWORD not in repr(logs)
    assert pub.buffered_events == 1


async def test_right_password_connects(auth_broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(auth_broker, username="dsl"), prefix=prefix, site="s",
                        password=Secret(PASSWORD))
    pub.publish_state(snapshot())
    async with running(pub):
        await connected(pub)
    assert pub.buffered_events == 0


class OneWayBlackhole:
    """A loopback TCP relay to the broker that can swallow everything the broker sends."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.blackhole = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       down: bool) -> None:
            try:
                while data := await src.read(65536):
                    if not (down and self.blackhole):
                        dst.write(data)
                        await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(r, uw, False), pump(ur, w, True))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_event_without_puback_stays_buffered_and_is_sent_again(
        broker: Mosquitto, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon.publish.mqtt, "PUBLISH_TIMEOUT", 0.5)
    relay = OneWayBlackhole(broker.port)
    port = await relay.start()
    try:
        cfg = mqtt_config(broker)
        cfg = cfg.model_copy(update={"port": port})
        pub = MqttPublisher(cfg, prefix=prefix, site="s", password=None)
        pub.backoff_initial = pub.backoff_max = 0.2
        async with watching(broker, f"{prefix}/event") as live, running(pub):
            pub.publish_event(event(0))
            # PUBACKed: so were `online` and the rest before it (one at a time, in order)
            await connected(pub, flushed=True)
            relay.blackhole = True    # the broker gets our PUBLISH; we never see PUBACK
            pub.publish_event(event(1))
            await live.wait_for(lambda ms: len(ms) >= 2)
            await disconnected(pub)  # publish timed out: reconnect
            assert pub.buffered_events == 1
            relay.blackhole = False
            await connected(pub, flushed=True)
            await live.wait_for(lambda ms: len(ms) >= 3)
        assert [m.json()["seq"] for m in live.messages] == [0, 1, 1]  # at least once
    finally:
        relay.close()
