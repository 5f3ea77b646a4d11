"""Commands on `<prefix>/cmd` through a real broker reach on_command, judged and in order."""

from __future__ import annotations

import json

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from daemon.lab.mosquitto import Mosquitto
from daemon.model import Action, OperatorCommand, RejectedCommand
from daemon.publish.mqtt import MqttPublisher, suback_refused
from tests.harness import wait_until

from .conftest import SUB_TIMEOUT, WAIT, mqtt_config, running, snapshot, watching

Received = list[OperatorCommand | RejectedCommand]


def commanded(broker: Mosquitto, prefix: str, got: Received,
              **kw: bool) -> MqttPublisher:
    return MqttPublisher(mqtt_config(broker, commands=True, **kw), prefix=prefix, site="s",
                         password=None, on_command=got.append)


async def wait_count(got: Received, n: int) -> None:
    await wait_until(lambda: len(got) >= n, WAIT, f"{n} commands at on_command",
                     detail=lambda: got)


async def send(broker: Mosquitto, topic: str, *payloads: bytes, retain: bool = False) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, timeout=SUB_TIMEOUT) as c:
        for p in payloads:
            await c.publish(topic, p, qos=1, retain=retain, timeout=SUB_TIMEOUT)


async def subscribed(broker: Mosquitto, pub: MqttPublisher) -> None:
    # the publisher subscribes to <prefix>/cmd before it announces `online`
    async with watching(broker, f"{pub.prefix}/availability") as w:
        await w.wait_payload(f"{pub.prefix}/availability", b"online")


async def test_good_command_reaches_on_command(broker: Mosquitto, prefix: str) -> None:
    got: Received = []
    pub = commanded(broker, prefix, got)
    async with running(pub):
        await subscribed(broker, pub)
        await send(broker, f"{prefix}/cmd", b'{"action": "failover", "reason": "test"}')
        await wait_count(got, 1)
    assert got == [OperatorCommand(Action.FAILOVER, "test", "mqtt")]


async def test_junk_payloads_become_rejected_commands_in_order(broker: Mosquitto,
                                                               prefix: str) -> None:
    got: Received = []
    pub = commanded(broker, prefix, got)
    junk = [b"", b"failover", b"\xff\xfe\x00", b'{"action": "reboot"}',
            b'{"action": "hold", "extra": 1}', b'{"action": 5}', b"x" * 5000, b"[]",
            json.dumps({"action": "hold", "reason": "r" * 201}).encode()]
    async with running(pub):
        await subscribed(broker, pub)
        await send(broker, f"{prefix}/cmd", *junk, b'{"action": "resume"}')
        await wait_count(got, len(junk) + 1)
        assert pub.connected  # none of it cut the connection
    assert all(isinstance(r, RejectedCommand) for r in got[:-1]), got
    assert got[-1] == OperatorCommand(Action.RESUME, "", "mqtt")
    whys = [r.why for r in got[:-1] if isinstance(r, RejectedCommand)]
    assert "not JSON" in whys[1]
    assert "not UTF-8" in whys[2]
    assert "unknown action" in whys[3]
    assert "too big" in whys[6]


async def test_retained_command_is_rejected_not_executed(broker: Mosquitto,
                                                         prefix: str) -> None:
    got: Received = []
    await send(broker, f"{prefix}/cmd", b'{"action": "failover"}', retain=True)
    try:
        pub = commanded(broker, prefix, got)
        async with running(pub):
            await wait_count(got, 1)
    finally:
        await send(broker, f"{prefix}/cmd", b"", retain=True)  # clear it
    assert len(got) == 1
    assert isinstance(got[0], RejectedCommand)
    assert "retained" in got[0].why
    assert "failover" in got[0].excerpt


async def test_commands_are_ignored_unless_enabled(broker: Mosquitto, prefix: str) -> None:
    got: Received = []
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None,
                        on_command=got.append)
    pub.publish_state(snapshot())
    # the positive marker: a publisher with commands on, on the same broker and topic;
    # once it has both commands, the broker has delivered them to every subscriber
    marker: Received = []
    async with running(pub), running(commanded(broker, prefix, marker)):
        await subscribed(broker, pub)
        await send(broker, f"{prefix}/cmd", b'{"action": "failover"}', b'{"action": "hold"}')
        await wait_count(marker, 2)
        # and a round trip through the publisher's own connection since then
        pub.publish_state(snapshot(seq=10**6))
        async with watching(broker, f"{prefix}/state") as w:
            await w.wait_for(lambda ms: any(m.json()["seq"] == 10**6 for m in ms))
    assert [type(c) for c in marker] == [OperatorCommand, OperatorCommand]
    assert got == []


async def test_failing_handler_does_not_cut_the_connection(broker: Mosquitto,
                                                           prefix: str) -> None:
    calls: Received = []

    def handler(cmd: OperatorCommand | RejectedCommand) -> None:
        calls.append(cmd)
        raise RuntimeError("bug in the daemon")

    pub = MqttPublisher(mqtt_config(broker, commands=True), prefix=prefix, site="s",
                        password=None, on_command=handler)
    async with running(pub):
        await subscribed(broker, pub)
        await send(broker, f"{prefix}/cmd", b'{"action": "hold"}', b'{"action": "resume"}')
        await wait_count(calls, 2)
        assert pub.connected


def test_suback_failure_codes_are_recognised() -> None:
    # mosquitto 2.0 grants every subscription and filters on delivery, so a refusing
    # SUBACK cannot be provoked from it; the codes come from other brokers (ACLs)
    assert suback_refused(ReasonCode(PacketTypes.SUBACK, "Not authorized"))
    assert suback_refused(ReasonCode(PacketTypes.SUBACK, "Unspecified error"))
    assert not suback_refused(ReasonCode(PacketTypes.SUBACK, "Granted QoS 1"))
    assert suback_refused(0x80)
    assert not suback_refused(1)
