"""The one builder of a MachineConfig for the machine's tests, from daemon/config.py's
defaults (through the test config of tests/harness.py and `machine_config()`, as the
daemon builds it). `overrides` change single fields; mx=True turns the backup MX on with
the [backup_mx] defaults. `on` starts a machine on a circuit, `only` finds the one
action of a kind, `cmd` is an operator's command.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from daemon.config import Config
from daemon.machine import (
    Command,
    Context,
    Decision,
    MachineConfig,
    ReadRouter,
    RouterResult,
    machine_config,
    start,
    step,
)
from daemon.model import Action, Circuit, OperatorCommand
from tests.harness import config_dict

T = TypeVar("T")


def machine_cfg(**overrides: Any) -> MachineConfig:
    return replace(machine_config(Config.model_validate(config_dict())), **overrides)


def cmd(action: Action, reason: str = "") -> Command:
    return Command(OperatorCommand(action, reason, "test"))


def on(cfg: MachineConfig, circuit: Circuit, now: float = 0.0) -> Context:
    d = start(cfg, now)
    (read,) = d.actions
    assert isinstance(read, ReadRouter)
    return step(d.ctx, RouterResult(read.action_id, True, circuit), now).ctx


def only(d: Decision, kind: type[T]) -> T:
    found = [a for a in d.actions if isinstance(a, kind)]
    assert len(found) == 1, d.actions
    return found[0]
