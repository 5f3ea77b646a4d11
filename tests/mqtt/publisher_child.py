"""Runs one MqttPublisher until killed: the will test SIGKILLs this process mid-connection.

Usage: python -m tests.mqtt.publisher_child PORT PREFIX
"""

from __future__ import annotations

import asyncio
import sys

from daemon.config import MqttConfig
from daemon.publish.mqtt import MqttPublisher


async def main(port: int, prefix: str) -> None:
    pub = MqttPublisher(MqttConfig(host="127.0.0.1", port=port, keepalive=60), prefix=prefix,
                        site="child", password=None)
    await pub.run(asyncio.Event())  # never stopped: only a signal ends this process


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
