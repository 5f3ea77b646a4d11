"""The one builder of a MachineConfig for the machine's tests, from daemon/config.py's
defaults (through the test config of tests/harness.py and `machine_config()`, as the
daemon builds it). `overrides` change single fields; mx=True turns the backup MX on with
the [backup_mx] defaults.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from daemon.config import Config
from daemon.machine import MachineConfig, machine_config
from tests.harness import config_dict


def machine_cfg(**overrides: Any) -> MachineConfig:
    return replace(machine_config(Config.model_validate(config_dict())), **overrides)
