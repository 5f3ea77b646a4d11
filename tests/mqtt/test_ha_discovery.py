"""Home Assistant discovery: retained config messages with the documented keys."""

from __future__ import annotations

import json

from daemon.lab.mosquitto import Mosquitto
from daemon.model import Action
from daemon.publish.ha_discovery import discovery_messages
from daemon.publish.mqtt import MqttPublisher

from .conftest import mqtt_config, running, watching

COMMON_KEYS = {"name", "unique_id", "availability_topic", "payload_available",
               "payload_not_available", "device"}
DEVICE_KEYS = {"identifiers", "name", "manufacturer", "model", "sw_version"}


def test_discovery_without_commands_removes_the_buttons() -> None:
    msgs = discovery_messages(prefix="p/x", site="x", discovery_prefix="ha", commands=False)
    buttons = [m for m in msgs if m.topic.startswith("ha/button/")]
    assert len(buttons) == len(Action)
    assert all(m.payload == "" for m in buttons)


def test_site_names_become_valid_node_ids() -> None:
    msgs = discovery_messages(prefix="p", site="a b/c", discovery_prefix="ha", commands=False)
    assert all(m.topic.split("/")[2] == "dslfailover_a_b_c" for m in msgs)


async def test_discovery_messages_are_retained_valid_and_complete(broker: Mosquitto,
                                                                  prefix: str) -> None:
    disc = f"ha{prefix.rsplit('/', 1)[1]}"
    pub = MqttPublisher(mqtt_config(broker, discovery=True, commands=True,
                                    discovery_prefix=disc),
                        prefix=prefix, site="office", password=None)
    async with running(pub), watching(broker, f"{pub.prefix}/availability") as live:
        await live.wait_payload(f"{prefix}/availability", b"online")
    async with watching(broker, f"{disc}/#") as late:
        await late.wait_for(lambda ms: len(ms) >= 6 + len(Action))
    configs = {m.topic: m.json() for m in late.messages}
    assert all(m.retain for m in late.messages)
    node = "dslfailover_office"
    link = configs[f"{disc}/binary_sensor/{node}/primary_link/config"]
    assert link["device_class"] == "connectivity"
    assert link["state_topic"] == f"{prefix}/state"
    assert "primary_link" in link["value_template"]
    assert configs[f"{disc}/sensor/{node}/state/config"]["value_template"] == (
        "{{ value_json.state }}")
    assert configs[f"{disc}/sensor/{node}/mail_path/config"]["value_template"] == (
        "{{ value_json.mail_path }}")
    for action in Action:
        button = configs[f"{disc}/button/{node}/{action.value}/config"]
        assert button["command_topic"] == f"{prefix}/cmd"
        assert json.loads(button["payload_press"])["action"] == action.value
    for body in configs.values():
        assert set(body) >= COMMON_KEYS
        assert set(body["device"]) >= DEVICE_KEYS
        assert body["device"]["identifiers"] == [node]
        assert body["availability_topic"] == f"{prefix}/availability"
        assert (body["payload_available"], body["payload_not_available"]) == (
            "online", "offline")
    assert len({b["unique_id"] for b in configs.values()}) == len(configs)
