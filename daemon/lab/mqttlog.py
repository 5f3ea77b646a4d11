"""`python -m daemon.lab.mqttlog --topic T --out FILE`: a real MQTT client (aiomqtt) that
writes every message under a topic filter to a JSON-lines file, for the chaos soak.

It runs inside the lab's `inside` namespace (the broker listens on that namespace's
loopback). Its session is persistent (a fixed client id, clean_session false, QoS 1), so
after a clean broker restart the broker keeps what was published for it meanwhile; it
reconnects at once after any broker failure. Each line is
`{"at": epoch, "topic", "payload", "retain"}`; `{"at", "link": "up"|"down", ...}` lines
say when it was subscribed and when it lost the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import aiomqtt

# Bounds one connect (CONNACK) and the subscribe (SUBACK) to the lab's local broker.
CONNECT_TIMEOUT = 5.0
# Pause between reconnect attempts: short, so it is back before the daemon is.
RETRY = 0.05


def _line(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps({"at": time.time(), **record}) + "\n")
    out.flush()


async def follow(host: str, port: int, topic: str, out: TextIO, client_id: str) -> None:
    """Write every message under `topic` to `out`, reconnecting until cancelled."""
    while True:
        try:
            async with aiomqtt.Client(host, port, identifier=client_id, clean_session=False,
                                      timeout=CONNECT_TIMEOUT) as client:
                await client.subscribe(topic, qos=1, timeout=CONNECT_TIMEOUT)
                _line(out, {"link": "up"})
                async for message in client.messages:
                    payload = message.payload
                    text = (bytes(payload).decode("utf-8", "replace")
                            if isinstance(payload, bytes | bytearray) else str(payload))
                    _line(out, {"topic": str(message.topic), "payload": text,
                                "retain": bool(message.retain)})
        except aiomqtt.MqttError as exc:
            _line(out, {"link": "down", "why": str(exc)})
            await asyncio.sleep(RETRY)


async def amain(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with args.out.open("a", encoding="utf-8") as out, \
            contextlib.suppress(asyncio.CancelledError):
        await follow(args.host, args.port, args.topic, out, args.client_id)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m daemon.lab.mqttlog")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--topic", required=True, help="a topic filter, e.g. dslfailover/site/#")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--client-id", default="dslfailover-lab-mqttlog")
    asyncio.run(amain(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
