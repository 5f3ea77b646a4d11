"""Home Assistant MQTT discovery messages for one site (pure: topics and payloads only).

HA reads retained config messages under `<discovery_prefix>/<component>/<node_id>/
<object_id>/config` and builds entities from them; the keys used here are the documented
ones (name, unique_id, state_topic, value_template, availability_topic,
payload_available, payload_not_available, device{identifiers, name, manufacturer, model,
sw_version}, command_topic, payload_press). One HA device per site. The entities read
our retained `<prefix>/state` JSON, so HA needs nothing else from us.

When commands are off, the buttons' config topics get an empty retained payload: that is
HA's documented way to remove an entity, so a button left over from an earlier run with
commands on disappears instead of sending commands nobody listens to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .. import __version__
from ..model import Action, DnsHealth, MailPath, State

MANUFACTURER = "dslfailover"
MODEL = "DSL failover daemon"


@dataclass(frozen=True, slots=True)
class DiscoveryMessage:
    """One retained config message; an empty payload removes the entity from HA."""

    topic: str
    payload: str


def _slug(text: str) -> str:
    # node_id and object_id allow only [a-zA-Z0-9_-] in HA's discovery topic
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery_messages(*, prefix: str, site: str, discovery_prefix: str,
                       commands: bool) -> list[DiscoveryMessage]:
    """The config messages for `site`, whose topics live under `prefix`."""
    node = f"dslfailover_{_slug(site)}"
    state_topic = f"{prefix}/state"
    common = {
        "availability_topic": f"{prefix}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [node],
            "name": f"DSL failover {site}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": __version__,
        },
        "origin": {"name": "dslfailover", "sw_version": __version__},
    }

    def config(component: str, object_id: str, body: dict[str, object]) -> DiscoveryMessage:
        payload = {"unique_id": f"{node}_{object_id}", **body, **common}
        return DiscoveryMessage(f"{discovery_prefix}/{component}/{node}/{object_id}/config",
                                json.dumps(payload, sort_keys=True))

    def link(key: str, name: str) -> DiscoveryMessage:
        return config("binary_sensor", key, {
            "name": name,
            "device_class": "connectivity",
            "state_topic": state_topic,
            # "None" is HA's word for unknown: our `unknown` must not read as down
            "value_template": (
                f"{{% set v = value_json.{key} %}}"
                "{{ 'ON' if v == 'up' else ('OFF' if v == 'down' else 'None') }}"),
            "payload_on": "ON",
            "payload_off": "OFF",
        })

    messages = [
        link("primary_link", "Primary link"),
        # probed only while the router is on the backup circuit: unknown otherwise
        link("backup_link", "Backup link"),
        config("sensor", "state", {
            "name": "State",
            "device_class": "enum",
            "options": [s.value for s in State],
            "state_topic": state_topic,
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": state_topic,
            "icon": "mdi:swap-horizontal",
        }),
        config("sensor", "circuit", {
            "name": "Circuit",
            "device_class": "enum",
            "options": ["primary", "backup", "unknown"],
            "state_topic": state_topic,
            "value_template": "{{ value_json.circuit }}",
            "icon": "mdi:wan",
        }),
        config("sensor", "mail_path", {
            "name": "Mail path",
            "device_class": "enum",
            "options": [m.value for m in MailPath],
            "state_topic": state_topic,
            "value_template": "{{ value_json.mail_path }}",
            "icon": "mdi:email-fast",
        }),
        config("sensor", "dns", {
            "name": "DNS MX records",
            "device_class": "enum",
            "options": [h.value for h in DnsHealth],
            "state_topic": state_topic,
            "value_template": "{{ value_json.dns }}",
            "icon": "mdi:dns",
        }),
    ]
    for action in Action:
        if commands:
            messages.append(config("button", action.value, {
                "name": action.value.capitalize(),
                "command_topic": f"{prefix}/cmd",
                "payload_press": json.dumps({"action": action.value,
                                             "reason": "Home Assistant button"}),
                "qos": 1,
            }))
        else:
            messages.append(DiscoveryMessage(
                f"{discovery_prefix}/button/{node}/{action.value}/config", ""))
    return messages
