"""Which publishers a config asks for, built and put behind the daemon's one `FanOut`.

MQTT, metrics and notices each have a loop of their own that the daemon runs in its
TaskGroup (`Attached` hands them over); each is imported only when configured, so that
a daemon without them does not carry their libraries (RSS at rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fanout import FanOut, MetricsOut, MqttOut

if TYPE_CHECKING:
    from ..config import Config, Secrets
    from .metrics import Metrics
    from .mqtt import CommandCallback, MqttPublisher
    from .notify import Notices


@dataclass(frozen=True, slots=True)
class Attached:
    """The configured publishers whose loops the daemon runs (None: not configured)."""

    mqtt: MqttPublisher | None = None
    metrics: Metrics | None = None
    notices: Notices | None = None


def attach(fanout: FanOut, cfg: Config, secrets: Secrets, *,
           on_command: CommandCallback) -> Attached:
    mqtt = metrics = notices = None
    if cfg.mqtt.enabled:
        from .mqtt import create_publisher

        mqtt = create_publisher(cfg, secrets, on_command=on_command)
        assert mqtt is not None  # enabled
        fanout.publishers.append(MqttOut(mqtt))
    if cfg.metrics.enabled:
        from .metrics import Metrics

        metrics = Metrics(cfg.site)
        fanout.publishers.append(MetricsOut(metrics))
    if cfg.notify is not None:
        from .notify import create_notices

        notices = create_notices(cfg, secrets)
        if notices is not None:
            fanout.publishers.append(notices)
    return Attached(mqtt, metrics, notices)
