"""Status, MQTT and metrics show one view of each probe target, also while it is paused.

`dslfailover run` (dry-run router, manual failback, probes to 127.0.0.1) with MQTT on a
real mosquitto and metrics on; on backup the primary is not probed, and all three say so
instead of showing the last rounds (which went out over the backup circuit).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from daemon.lab.mosquitto import Mosquitto
from tests.harness import DaemonProcess, daemon_config, daemon_process, free_port, wait_polled

from .test_daemon_ops import cli, scrape

pytestmark = [pytest.mark.root, pytest.mark.slow]

TARGET = "127.0.0.1"
# Bounds each wait for the three views to agree.
AGREE_TIMEOUT = 20.0
# Bounds reading one retained message.
READ_TIMEOUT = 5.0


class Site:
    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        self.prefix = f"dslfailover/v{uuid.uuid4().hex[:8]}"
        self.broker = broker
        self.port = free_port()
        self.config = daemon_config(
            tmp_path, primary={"targets": [TARGET]},
            mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
                  "prefix": self.prefix, "probe_interval": 1},
            metrics={"enabled": True, "host": "127.0.0.1", "port": self.port})
        self.log = tmp_path / "daemon.log"

    async def retained(self) -> dict[str, Any]:
        """The retained `probe/<target>` message, as a new subscriber gets it."""
        async with aiomqtt.Client("127.0.0.1", self.broker.port, timeout=READ_TIMEOUT) as c:
            await c.subscribe(f"{self.prefix}/probe/{TARGET}")
            async with asyncio.timeout(READ_TIMEOUT):
                async for message in c.messages:
                    payload = message.payload
                    assert isinstance(payload, bytes | bytearray)
                    result: dict[str, Any] = json.loads(payload)
                    return result
        raise AssertionError("no retained message")

    async def views(self, daemon: DaemonProcess) -> dict[str, Any]:
        status = (await daemon.status()).get("targets", {}).get(TARGET)
        metric = scrape(self.port).get(
            ("dslfailover_probe_up", frozenset({"site": "test", "target": TARGET}.items())))
        return {"status": status, "mqtt": await self.retained(), "probe_up": metric}


@pytest.fixture
def site(tmp_path: Path, broker: Mosquitto) -> Site:
    return Site(tmp_path, broker)


@pytest.fixture
def daemon(site: Site) -> Iterator[DaemonProcess]:
    with daemon_process(site.config, log=site.log) as d:
        yield d


def probed(views: dict[str, Any]) -> bool:
    mqtt, status = views["mqtt"], views["status"] or {}
    return (views["probe_up"] == 1.0 and mqtt.get("ok") is True and "paused" not in mqtt
            and status.get("ok") is True and status.get("loss") == mqtt.get("loss"))


def paused(views: dict[str, Any]) -> bool:
    mqtt, status = views["mqtt"], views["status"] or {}
    return (views["probe_up"] is None
            and mqtt.get("paused") is True and mqtt.get("ok") is None
            and status.get("paused") is True and status.get("ok") is None)


async def test_a_target_not_probed_on_backup_is_paused_in_status_mqtt_and_metrics(
        site: Site, daemon: DaemonProcess) -> None:
    await daemon.wait_state("primary")
    await wait_polled(lambda: site.views(daemon), probed, AGREE_TIMEOUT,
                      "status, MQTT and metrics to show the target answering", step=0.2)
    over = cli("failover", "-c", str(site.config))
    assert over.returncode == 0, over.stderr
    seen = await wait_polled(lambda: site.views(daemon), paused, AGREE_TIMEOUT,
                             "status, MQTT and metrics to show the target paused", step=0.2)
    assert seen["mqtt"]["loss"] is None and seen["status"]["loss"] is None
    back = cli("failback", "-c", str(site.config))
    assert back.returncode == 0, back.stderr
    await wait_polled(lambda: site.views(daemon), probed, AGREE_TIMEOUT,
                      "the target probed again after the failback, in all three", step=0.2)
