"""Benchmark of the MQTT publisher against a real mosquitto on loopback; prints JSON.

Run: .venv/bin/python -m tests.mqtt.bench_mqtt [--states N] [--events N]

- state_latency_ms: publish_state() to a subscriber receiving it (p50/p95/max)
- events_per_s: QoS-1 events, publish_event() of all to the subscriber having them all
- outage_recovery_s: broker restarted (crash, no persistence) to the state being retained
  again, with the default reconnect backoff
- publish_call_us: cost of one publish_event() call while the broker is down
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime

import aiomqtt

from daemon.config import MqttConfig
from daemon.lab.mosquitto import Mosquitto
from daemon.model import (
    AuditEvent,
    Circuit,
    EventKind,
    LinkHealth,
    MailPath,
    State,
    StateSnapshot,
)
from daemon.publish.mqtt import MqttPublisher

# Bounds each phase of the benchmark, so that a broken build fails instead of hanging.
PHASE_TIMEOUT = 120.0
PREFIX = "dslfailover/bench"


def snap(seq: int) -> StateSnapshot:
    return StateSnapshot(State.PRIMARY, Circuit.PRIMARY, LinkHealth.UP, MailPath.OK,
                         datetime.now(UTC), "bench", seq)


def ev(seq: int) -> AuditEvent:
    return AuditEvent(seq, datetime.now(UTC), EventKind.ACTION, None, None, "bench",
                      {"i": seq})


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 3)


async def bench(states: int, events: int) -> dict[str, object]:
    broker = Mosquitto()
    await asyncio.to_thread(broker.start)
    try:
        pub = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port,
                                       buffer=max(events, 10)),
                            prefix=PREFIX, site="bench", password=None)
        stop = asyncio.Event()
        runner = asyncio.create_task(pub.run(stop))
        async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
            await sub.subscribe(f"{PREFIX}/#", qos=1)
            async with asyncio.timeout(PHASE_TIMEOUT):
                while not pub.connected:
                    await asyncio.sleep(0.01)
            msgs = sub.messages
            latencies: list[float] = []
            async with asyncio.timeout(PHASE_TIMEOUT):
                for seq in range(1, states + 1):
                    t0 = time.perf_counter()
                    pub.publish_state(snap(seq))
                    async for m in msgs:
                        if m.topic.value.endswith("/state") and \
                                json.loads(m.payload)["seq"] == seq:
                            break
                    latencies.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for seq in range(1, events + 1):
                pub.publish_event(ev(seq))
            got = 0
            async with asyncio.timeout(PHASE_TIMEOUT):
                async for m in msgs:
                    if m.topic.value.endswith("/event"):
                        got += 1
                        if got == events:
                            break
            ev_rate = events / (time.perf_counter() - t0)
        # outage: crash the broker, publish while it is down, bring it back
        await asyncio.to_thread(broker.kill)
        async with asyncio.timeout(PHASE_TIMEOUT):
            while pub.connected:
                await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        for seq in range(1, 1001):
            pub.publish_event(ev(seq))
        call_us = (time.perf_counter() - t0) / 1000 * 1e6
        pub.publish_state(snap(states + 1))
        await asyncio.sleep(1.0)  # a real outage lasts a while; backoff has grown a bit
        await asyncio.to_thread(broker.start)
        t0 = time.perf_counter()
        async with asyncio.timeout(PHASE_TIMEOUT):
            while not pub.connected or pub.buffered_events:
                await asyncio.sleep(0.005)
        recovery = time.perf_counter() - t0
        stop.set()
        async with asyncio.timeout(PHASE_TIMEOUT):
            await runner
    finally:
        await asyncio.to_thread(broker.stop)
    return {
        "state_latency_ms": {"n": states, "p50": pct(latencies, 0.5),
                             "p95": pct(latencies, 0.95), "max": round(max(latencies), 3),
                             "mean": round(statistics.fmean(latencies), 3)},
        "events_per_s": round(ev_rate),
        "events": events,
        "outage_recovery_s": round(recovery, 3),
        "publish_call_us": round(call_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=500)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.states, args.events)), indent=2))


if __name__ == "__main__":
    main()
