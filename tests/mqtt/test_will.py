"""The last will: a publisher that dies without a goodbye is reported `offline` by the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from daemon.lab.mosquitto import Mosquitto

from .conftest import watching

ROOT = Path(__file__).resolve().parents[2]


async def test_broker_publishes_the_will_when_the_publisher_dies(broker: Mosquitto,
                                                                 prefix: str) -> None:
    topic = f"{prefix}/availability"
    child = subprocess.Popen([sys.executable, "-m", "tests.mqtt.publisher_child",
                              str(broker.port), prefix], cwd=ROOT, start_new_session=True)
    try:
        async with watching(broker, topic) as live:
            await live.wait_payload(topic, b"online")
            seen = len(live.messages)
            # SIGKILL: no DISCONNECT, no `offline` of its own; the kernel closes the socket
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            will = await live.wait_payload(topic, b"offline", after=seen)
        assert not will.retain  # delivered live; the broker also keeps it retained:
        async with watching(broker, topic) as late:
            await late.wait_for(lambda ms: len(ms) >= 1)
        assert late.messages[0].payload == b"offline"
        assert late.messages[0].retain
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
