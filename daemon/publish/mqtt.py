"""The MQTT publisher: state, audit events and probe summaries out, operator commands in.

Contract: DESIGN §7. `publish_state/event/probe` (from the daemon's loop) only update memory
and wake the sender: a dead broker never delays a failover. `run(stop)` owns the connection:
connect (last will `<prefix>/availability` = `offline`, retained), announce `online`, publish
the state, every buffered event in seq order, the retained list of recent events and the latest
probe summaries, then new items as they come. An event leaves the buffer only once its QoS-1
publish is acknowledged: after an outage the rest are re-sent in order (at least once; `seq`
lets subscribers drop a duplicate). Connection problems never escape `run`: logged once per
change (host:port and the reason, never the password), retried with randomized, growing backoff
until `stop`; then `offline` (retained) and a clean disconnect; a connect in progress is abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections import deque
from collections.abc import Callable

import aiomqtt
import structlog

from router_drivers import Secret

from ..config import Config, MqttConfig, Secrets, topic_prefix
from ..model import AuditEvent, OperatorCommand, ProbeSummary, RejectedCommand, StateSnapshot
from ..stopping import cancel_all, unless_stopped
from .ha_discovery import discovery_messages
from .mqtt_wire import (
    RecentEvents,
    abandon,
    dumps,
    judge_command,
    probe_topic_part,
    suback_refused,
    why,
)
from .probe_gate import ProbeGate

__all__ = ["CommandCallback", "MqttPublisher", "create_publisher", "suback_refused"]

log = structlog.get_logger("dslfailover.mqtt")

# Bounds one publish: for QoS 1 until the broker's PUBACK. A healthy local broker answers
# in milliseconds; longer means the connection is dead but TCP has not noticed yet.
PUBLISH_TIMEOUT = 5.0
# Bounds the SUBSCRIBE -> SUBACK round trip for `<prefix>/cmd`.
SUBSCRIBE_TIMEOUT = 5.0
# Bounds the whole goodbye on shutdown, `offline` (PUBACK) and DISCONNECT: stopping must
# not wait for a broker that is away (the socket is closed then: the will says `offline`).
GOODBYE_TIMEOUT = 2.0
# Reconnect delays: the first retry after about BACKOFF_INITIAL seconds, doubling up to
# BACKOFF_MAX, each one drawn uniformly from [delay/2, delay] so that many sites do not
# reconnect to a restarted broker in lockstep.
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0

CommandCallback = Callable[[OperatorCommand | RejectedCommand], None]


class MqttPublisher:
    """Publishes the daemon's state to one broker and passes `<prefix>/cmd` commands on."""

    backoff_initial = BACKOFF_INITIAL
    backoff_max = BACKOFF_MAX

    def __init__(self, cfg: MqttConfig, *, prefix: str, site: str, password: Secret | None,
                 on_command: CommandCallback | None = None) -> None:
        prefix = topic_prefix(prefix)  # ValueError: empty, or with wildcards
        self._cfg = cfg
        self._prefix = prefix
        self._site = site
        self._password = password
        self._on_command = on_command
        self._where = f"{cfg.host}:{cfg.port}"
        self._state: StateSnapshot | None = None
        self._state_dirty = False
        self._events: deque[AuditEvent] = deque()
        self._recent = RecentEvents()   # `<prefix>/events`, retained
        self._dropped = 0            # events dropped since the last report
        self._dropped_total = 0      # ... since start, for metrics
        self._probes = ProbeGate(cfg.probe_interval, cfg.probe_loss_step)  # latest, which, when
        self._wake = asyncio.Event()
        self._connected = False

    @property
    def prefix(self) -> str:
        """The topic prefix (`[mqtt] prefix`, else derived from the site)."""
        return self._prefix

    @property
    def connected(self) -> bool:
        """Whether a session with the broker is up (subscribed, state published)."""
        return self._connected

    @property
    def buffered_events(self) -> int:
        """Events waiting for the broker (at most `[mqtt] buffer`; the oldest go first)."""
        return len(self._events)

    @property
    def dropped_events(self) -> int:
        """Events dropped because the buffer was full, since the last connect."""
        return self._dropped

    @property
    def dropped_events_total(self) -> int:
        """Events dropped because the buffer was full, since this publisher was made."""
        return self._dropped_total

    # -- called by the daemon (from the event loop's thread): memory only, never await ----

    def publish_state(self, snap: StateSnapshot) -> None:
        self._state = snap
        self._state_dirty = True
        self._wake.set()

    def publish_event(self, event: AuditEvent) -> None:
        if len(self._events) >= self._cfg.buffer:
            self._events.popleft()
            if self._dropped == 0:
                log.warning("mqtt_buffer_full_dropping_oldest", buffer=self._cfg.buffer,
                            broker=self._where)
            self._dropped += 1
            self._dropped_total += 1
        self._events.append(event)
        self._wake.set()

    def publish_probe(self, summary: ProbeSummary) -> None:
        if self._probes.offer(probe_topic_part(summary.name), summary, time.monotonic()):
            self._wake.set()

    # -- the connection lifecycle ------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish, reconnect with backoff; return soon after `stop` is set.

        Never raises for a broker problem: the daemon fails over without MQTT. Returns
        within GOODBYE_TIMEOUT of `stop`, connecting (abandoned) or in a session alike.
        """
        backoff = self.backoff_initial
        last_problem: str | None = None
        failures = 0
        while not stop.is_set():
            client: aiomqtt.Client | None = None
            was_connected = said_goodbye = False
            try:
                client = self._client()
                # the context manager by hand: its entry, the connect, is raced with `stop`
                if not await unless_stopped(client.__aenter__(), stop):
                    return   # stopped while connecting: the attempt is abandoned (finally)
                was_connected = True
                self._connected = True
                # no [mqtt] client_id: the broker assigns one, which paho does not tell us
                log.info("mqtt_connected", broker=self._where,
                         client_id=client.identifier or "(assigned by the broker)",
                         failed_attempts=failures)
                last_problem, failures, backoff = None, 0, self.backoff_initial
                await self._session(client, stop)
                said_goodbye = True
                return
            except (aiomqtt.MqttError, OSError) as exc:
                problem = why(exc)
                if was_connected:
                    log.warning("mqtt_connection_lost", broker=self._where, error=problem)
                elif problem != last_problem:
                    log.error("mqtt_cannot_connect", broker=self._where, error=problem,
                              backoff_max=self.backoff_max)
                else:
                    log.debug("mqtt_still_cannot_connect", broker=self._where, error=problem)
                last_problem = None if was_connected else problem
                failures += 0 if was_connected else 1
            except Exception:
                # a bug of ours (or of a library) must not end MQTT for the daemon's life:
                # report it loudly and start over with a fresh connection
                log.exception("mqtt_unexpected_error_reconnecting", broker=self._where)
                last_problem = None
            finally:
                self._connected = False
                if client is not None and not said_goodbye:
                    abandon(client)   # a failed or abandoned attempt, a lost connection
            delay = random.uniform(backoff / 2, backoff)
            backoff = min(backoff * 2, self.backoff_max)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    def _client(self) -> aiomqtt.Client:
        cfg = self._cfg
        tls_context = None
        if cfg.tls:
            # reads the CA file: an unreadable one is an OSError, logged like a refusal
            tls_context = ssl.create_default_context(
                cafile=str(cfg.ca_file) if cfg.ca_file else None)
        return aiomqtt.Client(
            cfg.host, cfg.port,
            username=cfg.username,
            password=self._password.reveal() if self._password is not None else None,
            identifier=cfg.client_id,
            keepalive=cfg.keepalive,
            will=aiomqtt.Will(self._topic("availability"), "offline", qos=1, retain=True),
            tls_context=tls_context,
            # aiomqtt's default deadline for CONNACK and the DISCONNECT handshake
            timeout=cfg.connect_timeout,
        )

    def _topic(self, leaf: str) -> str:
        return f"{self._prefix}/{leaf}"

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection: send and receive until it fails (raises) or `stop` (goodbye)."""
        if self._dropped:
            log.warning("mqtt_events_dropped_while_away", dropped=self._dropped,
                        buffer=self._cfg.buffer)
            self._dropped = 0
        # the broker may have lost everything retained: republish all of it
        self._state_dirty = self._state is not None
        self._recent.resend()
        self._probes.resend_all()
        if self._cfg.commands and not await unless_stopped(self._subscribe(client), stop):
            await self._goodbye(client)
            return
        sender = asyncio.create_task(self._send_loop(client), name="mqtt-send")
        receiver = asyncio.create_task(self._receive_loop(client), name="mqtt-receive")
        stopper = asyncio.create_task(stop.wait(), name="mqtt-stop")
        tasks = (sender, receiver, stopper)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._goodbye(client)
            raise
        finally:
            await cancel_all(tasks, GOODBYE_TIMEOUT)   # a lost cancel must not hold the goodbye
        for task in (sender, receiver):
            failure = task.exception() if task in done else None
            if failure is not None:
                raise failure
        await self._goodbye(client)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        """`<prefix>/cmd`, before `online`: once HA shows us available, its buttons work.
        A refusal is not fatal: state and events still flow; commands work via the CLI."""
        granted = await client.subscribe(self._topic("cmd"), qos=1, timeout=SUBSCRIBE_TIMEOUT)
        if any(suback_refused(code) for code in granted):
            log.error("mqtt_subscription_refused", broker=self._where,
                      topic=self._topic("cmd"), hint="an ACL? MQTT commands will not arrive")

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """`offline` ourselves, then DISCONNECT (the broker drops the will), or close."""
        self._connected = False
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await client.publish(self._topic("availability"), "offline", qos=1,
                                     retain=True, timeout=GOODBYE_TIMEOUT)
                await client.__aexit__(None, None, None)   # the DISCONNECT
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("mqtt_offline_not_published", broker=self._where, error=why(exc))
            abandon(client)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str, *,
                       qos: int, retain: bool) -> None:
        await client.publish(topic, payload, qos=qos, retain=retain, timeout=PUBLISH_TIMEOUT)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        cfg = self._cfg
        if cfg.discovery:
            for msg in discovery_messages(prefix=self._prefix, site=self._site,
                                          discovery_prefix=cfg.discovery_prefix,
                                          commands=cfg.commands):
                await self._publish(client, msg.topic, msg.payload, qos=1, retain=True)
        await self._publish(client, self._topic("availability"), "online", qos=1, retain=True)
        while True:
            self._wake.clear()
            await self._drain(client)
            with contextlib.suppress(TimeoutError):  # woken, or a held probe summary is due
                async with asyncio.timeout(self._probes.delay(time.monotonic())):
                    await self._wake.wait()

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Publish whatever is pending: the state first (latest wins), events, the recent
    list, probes."""
        while True:
            if self._state_dirty and self._state is not None:
                snap = self._state
                self._state_dirty = False
                try:
                    payload = dumps(snap.as_dict(), f"state seq {snap.seq}")
                    await self._publish(client, self._topic("state"), payload, qos=1,
                                        retain=True)
                except BaseException:
                    self._state_dirty = True
                    raise
            elif self._events:
                event = self._events[0]
                payload = dumps(event.as_dict(), f"event seq {event.seq}")
                await self._publish(client, self._topic("event"), payload, qos=1,
                                    retain=False)
                # only now is it safe to forget; it may already have been dropped as the
                # oldest of a full buffer while we waited for the PUBACK
                if self._events and self._events[0] is event:
                    self._events.popleft()
                self._recent.add(event)
            elif self._recent.dirty:
                self._recent.dirty = False
                await self._publish(client, self._topic("events"), self._recent.payload(),
                                    qos=1, retain=True)
            elif (probe := self._probes.pop(time.monotonic())) is not None:
                # no retry here: a failed publish ends the session, and the next resends all
                part, summary = probe
                await self._publish(client, self._topic(f"probe/{part}"),
                                    dumps(summary.as_dict(), f"probe {part}"), qos=0, retain=True)
            else:
                return

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        """Handle commands; also how we notice a dead connection (the iterator raises)."""
        cmd_topic = self._topic("cmd")
        async for message in client.messages:
            if not message.topic.matches(cmd_topic):
                continue
            self._handle_command(message)

    def _handle_command(self, message: aiomqtt.Message) -> None:
        result = judge_command(message)
        if isinstance(result, RejectedCommand):
            log.warning("mqtt_command_rejected", topic=message.topic.value, why=result.why,
                        excerpt=result.excerpt)
        else:
            log.info("mqtt_command", action=result.action.value, reason=result.reason)
        if self._on_command is None:
            return
        try:
            self._on_command(result)
        except Exception:
            # a bug in the daemon's handler must not cut the MQTT connection
            log.exception("mqtt_command_handler_failed", command=repr(result))


def create_publisher(cfg: Config, secrets: Secrets, *,
                     on_command: CommandCallback | None = None) -> MqttPublisher | None:
    """The publisher for a validated config, or None when `[mqtt] enabled = false`."""
    if not cfg.mqtt.enabled:
        return None
    return MqttPublisher(cfg.mqtt, prefix=cfg.mqtt_prefix, site=cfg.site,
                         password=secrets.mqtt_password, on_command=on_command)
