"""What the MQTT publisher puts on the wire and takes off it, apart from the connection.

Topic levels for probe names, JSON payloads that never raise, SUBACK codes, short
reasons for broker failures, the judgement of one received `<prefix>/cmd` message, the
retained list of recent events, and closing the socket of an abandoned connect. Pure
but for that, and the log line of a payload that is not plain JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import deque
from typing import Any

import aiomqtt
import structlog

from ..control.commands import excerpt, parse_command
from ..model import AuditEvent, OperatorCommand, RejectedCommand

log = structlog.get_logger("dslfailover.mqtt")


def abandon(client: aiomqtt.Client) -> None:
    """Close the socket of a connect attempt that failed after TCP was up.

    aiomqtt leaves it open when CONNACK does not come in time; left alone it would live on
    (paho keeps pinging) and its last will `offline` would fire later, in the middle of a
    newer, healthy connection. paho's own close also unregisters aiomqtt's reader.
    """
    with contextlib.suppress(Exception):
        client._client._sock_close()  # private: no public way, see above


def probe_topic_part(name: str) -> str:
    """A probe name as one topic level: MQTT wildcards and separators become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def why(exc: BaseException) -> str:
    """A short reason for a failure (aiomqtt/paho/ssl text, which never holds credentials)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiomqtt.MqttCodeError):
        # e.g. "[code:134] Bad user name or password" from a refusing CONNACK
        return f"the broker says {text}"
    return text


def suback_refused(code: object) -> bool:
    """A SUBACK code that refuses the subscription (0x80 and up; MQTT 3.1.1 and 5)."""
    failure = getattr(code, "is_failure", None)
    if isinstance(failure, bool):
        return failure
    return isinstance(code, int) and code >= 0x80


def dumps(value: dict[str, Any], what: str) -> str:
    """JSON for a payload; never raises (a bad `detail` value must not stop the sender)."""
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except (TypeError, ValueError) as exc:
        log.error("mqtt_payload_not_plain_json", what=what, error=str(exc))
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return json.dumps({"error": f"{what} could not be serialized"})


def judge_command(message: aiomqtt.Message) -> OperatorCommand | RejectedCommand:
    """The command in one message on `<prefix>/cmd`, or why it is refused. Never raises."""
    raw = message.payload
    payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
    if message.retain:
        # a retained command is from the past: acting on it at start-up could fail
        # the router over long after whoever sent it has forgotten
        return RejectedCommand(why="retained message (a stale command); ignored",
                               source="mqtt", excerpt=excerpt(payload))
    return parse_command(payload, source="mqtt")


# How many events `<prefix>/events` (retained) holds: what a dashboard shows on connect.
RECENT_EVENTS = 10


class RecentEvents:
    """The last RECENT_EVENTS events published on `<prefix>/event`, for the retained
    `<prefix>/events` list (oldest first), so that a new subscriber sees them at once."""

    def __init__(self) -> None:
        self._events: deque[AuditEvent] = deque(maxlen=RECENT_EVENTS)
        self.dirty = False   # the retained list is behind

    def add(self, event: AuditEvent) -> None:
        if self._events and event.seq <= self._events[-1].seq:
            return   # re-sent after an outage: already in the list
        self._events.append(event)
        self.dirty = True

    def resend(self) -> None:
        """A new connection: the broker may have lost what it retained."""
        self.dirty = bool(self._events)

    def payload(self) -> str:
        return dumps({"events": [e.as_dict() for e in self._events]}, "recent events")
