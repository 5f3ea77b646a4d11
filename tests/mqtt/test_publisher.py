"""The publisher against a real mosquitto: retained state, availability, events, probes."""

from __future__ import annotations

import asyncio
import json

import pytest

from daemon.config import Config, MqttConfig, Secrets, parse_config
from daemon.lab.mosquitto import Mosquitto
from daemon.model import LinkHealth, State
from daemon.publish.mqtt import MqttPublisher, create_publisher
from tests.harness import config_toml, wait_until

from .conftest import Received, event, mqtt_config, probe, running, snapshot, watching


async def test_connect_publishes_online_and_the_retained_state(broker: Mosquitto,
                                                               prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    snap = snapshot(State.PRIMARY)
    pub.publish_state(snap)
    async with running(pub):
        async with watching(broker, f"{prefix}/#") as live:
            await live.wait_payload(f"{prefix}/availability", b"online")
            await live.wait_payload(f"{prefix}/state", json.dumps(snap.as_dict()).encode())
        assert pub.connected
        # a subscriber arriving later gets both as retained messages
        async with watching(broker, f"{prefix}/#") as late:
            await late.wait_for(lambda ms: len(ms) >= 2)
            by_topic = {m.topic: m for m in late.messages}
    assert by_topic[f"{prefix}/availability"].payload == b"online"
    assert by_topic[f"{prefix}/availability"].retain
    state = by_topic[f"{prefix}/state"]
    assert state.retain
    assert state.json() == snap.as_dict()


async def test_latest_state_wins(broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    async with running(pub), watching(broker, f"{prefix}/#") as live:
        await live.wait_payload(f"{prefix}/availability", b"online")
        for state in (State.FAILING_OVER, State.BACKUP):
            pub.publish_state(snapshot(state, link=LinkHealth.DOWN))
        await live.wait_for(lambda ms: any(m.json()["state"] == "backup"
                                          for m in live.on(f"{prefix}/state")))
    # both came in one go, so only the latest was sent
    assert [m.json()["state"] for m in live.on(f"{prefix}/state")] == ["backup"]
    async with watching(broker, f"{prefix}/state") as late:
        await late.wait_for(lambda ms: len(ms) >= 1)
    assert late.messages[0].json()["state"] == "backup"
    assert late.messages[0].json()["primary_link"] == "down"


async def test_clean_shutdown_publishes_offline(broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    async with watching(broker, f"{prefix}/availability") as live:
        async with running(pub):
            await live.wait_payload(f"{prefix}/availability", b"online")
        # running() has set stop and awaited run(): it returned
        await live.wait_payload(f"{prefix}/availability", b"offline")
    assert not pub.connected
    async with watching(broker, f"{prefix}/availability") as late:
        await late.wait_for(lambda ms: len(ms) >= 1)
    assert late.messages[0].payload == b"offline"
    assert late.messages[0].retain


async def test_run_returns_soon_after_stop(broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    try:
        await wait_until(lambda: pub.connected, 10, "the publisher connected")
        stop.set()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(10):
            await task
        assert loop.time() - started < 1.0
    finally:
        task.cancel()


async def test_events_arrive_in_seq_order_as_qos1_not_retained(broker: Mosquitto,
                                                               prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    topic = f"{prefix}/event"
    async with watching(broker, topic) as live, running(pub):
        for seq in range(1, 51):
            pub.publish_event(event(seq))
        await live.wait_for(lambda ms: len(ms) >= 50)
    seqs = [m.json()["seq"] for m in live.on(topic)]
    assert seqs == list(range(1, 51))
    assert live.messages[0].json() == event(1).as_dict()
    assert not any(m.retain for m in live.messages)
    assert pub.buffered_events == 0


async def test_the_last_ten_events_are_retained_for_a_new_subscriber(broker: Mosquitto,
                                                                      prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    async with running(pub):
        async with watching(broker, f"{prefix}/event") as live:
            for seq in range(1, 13):
                pub.publish_event(event(seq))
            await live.wait_for(lambda ms: len(ms) >= 12)
        def up_to_12(ms: list[Received]) -> bool:
            return any([e["seq"] for e in m.json()["events"]][-1:] == [12] for m in ms)

        async with watching(broker, f"{prefix}/events") as published:
            await published.wait_for(up_to_12)
        # a subscriber that comes later gets the list the broker retained
        async with watching(broker, f"{prefix}/events") as late:
            await late.wait_for(lambda ms: len(ms) >= 1)
    [retained] = late.messages
    assert retained.retain
    assert [e["seq"] for e in retained.json()["events"]] == list(range(3, 13))
    assert retained.json()["events"][-1] == event(12).as_dict()


async def test_events_published_before_connecting_are_kept_and_sent(broker: Mosquitto,
                                                                    prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    for seq in (7, 8, 9):
        pub.publish_event(event(seq))
    assert pub.buffered_events == 3
    async with watching(broker, f"{prefix}/event") as live, running(pub):
        await live.wait_for(lambda ms: len(ms) >= 3)
    assert [m.json()["seq"] for m in live.messages] == [7, 8, 9]


async def test_full_buffer_drops_the_oldest_events(broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker, buffer=10), prefix=prefix, site="s",
                        password=None)
    for seq in range(1, 16):
        pub.publish_event(event(seq))
    assert pub.buffered_events == 10
    assert pub.dropped_events == 5
    async with watching(broker, f"{prefix}/event") as live, running(pub):
        await live.wait_for(lambda ms: len(ms) >= 10)
    assert [m.json()["seq"] for m in live.messages] == list(range(6, 16))
    assert pub.dropped_events == 0  # reported (logged) on connect
    assert pub.dropped_events_total == 5


async def test_probe_summaries_are_retained_latest_per_name(broker: Mosquitto,
                                                            prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    pub.publish_probe(probe("icmp-1.1.1.1", ok=True))
    pub.publish_probe(probe("icmp-1.1.1.1", ok=False, loss=0.5))
    pub.publish_probe(probe("smtp", ok=True))
    async with running(pub), watching(broker, f"{prefix}/probe/#") as live:
        await live.wait_for(lambda ms: len(ms) >= 2)
    # a later subscriber gets the latest of each as a retained message
    async with watching(broker, f"{prefix}/probe/#") as late:
        await late.wait_for(lambda ms: len(ms) >= 2)
    got = {m.topic: m.json() for m in late.messages}
    assert got[f"{prefix}/probe/icmp-1.1.1.1"] == probe("icmp-1.1.1.1", ok=False,
                                                        loss=0.5).as_dict()
    assert got[f"{prefix}/probe/smtp"]["ok"] is True
    assert all(m.retain for m in late.messages)
    assert len(live.on(f"{prefix}/probe/icmp-1.1.1.1")) == 1  # only the latest was sent


async def test_an_unchanged_probe_summary_is_held_and_a_change_goes_out_at_once(
        broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker, probe_interval=3600), prefix=prefix, site="s",
                        password=None)
    topic = f"{prefix}/probe/t"
    first, same, down = probe("t"), probe("t", rtt_ms=2.5), probe("t", ok=False, loss=0.05)
    async with running(pub), watching(broker, topic) as live:
        pub.publish_probe(first)
        await live.wait_payload(topic, json.dumps(first.as_dict()).encode())
        pub.publish_probe(same)      # only the RTT moved: held for the interval
        pub.publish_probe(down)      # ok flipped: at once, payload as it always was
        await live.wait_payload(topic, json.dumps(down.as_dict()).encode())
    assert [m.json() for m in live.on(topic)] == [first.as_dict(), down.as_dict()]


async def test_a_held_probe_summary_goes_out_when_due_without_another_round(
        broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker, probe_interval=1.0), prefix=prefix, site="s",
                        password=None)
    topic = f"{prefix}/probe/t"
    first, later = probe("t"), probe("t", rtt_ms=2.5)
    async with running(pub), watching(broker, topic) as live:
        pub.publish_probe(first)
        await live.wait_payload(topic, json.dumps(first.as_dict()).encode())
        pub.publish_probe(later)   # held, then sent by the sender's own wake-up
        await live.wait_payload(topic, json.dumps(later.as_dict()).encode())
    # a subscriber arriving now gets the latest as the retained value
    async with watching(broker, topic) as late:
        await late.wait_for(lambda ms: len(ms) >= 1)
    assert late.messages[0].json() == later.as_dict()
    assert [m.json() for m in live.on(topic)] == [first.as_dict(), later.as_dict()]


async def test_probe_name_with_wildcards_becomes_one_topic_level(broker: Mosquitto,
                                                                 prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    pub.publish_probe(probe("a/b+c#"))
    async with running(pub), watching(broker, f"{prefix}/probe/#") as live:
        await live.wait_for(lambda ms: len(ms) >= 1)
    assert live.messages[0].topic == f"{prefix}/probe/a_b_c_"


def test_create_publisher_uses_the_site_prefix_and_honours_enabled() -> None:
    cfg: Config = parse_config(config_toml(site="unixwiz", mqtt=None))
    pub = create_publisher(cfg, Secrets())
    assert pub is not None
    assert pub.prefix == "dslfailover/unixwiz"
    off = parse_config(config_toml(site="unixwiz", mqtt={"enabled": False}))
    assert create_publisher(off, Secrets()) is None


def test_a_prefix_with_wildcards_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a usable topic prefix"):
        MqttPublisher(MqttConfig(), prefix="a/+/b", site="s", password=None)


async def test_cancelled_run_still_says_offline(broker: Mosquitto, prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    topic = f"{prefix}/availability"
    async with watching(broker, topic) as live:
        task = asyncio.create_task(pub.run(asyncio.Event()))
        try:
            await live.wait_payload(topic, b"online")
            seen = len(live.messages)
            task.cancel()
            async with asyncio.timeout(10):
                with pytest.raises(asyncio.CancelledError):
                    await task
            await live.wait_payload(topic, b"offline", after=seen)
        finally:
            task.cancel()
