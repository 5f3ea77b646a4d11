"""The shipped unit is hardened: systemd's own offline analysis scores it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "systemd" / "dslfailover.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_exposure_is_at_most_2() -> None:
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
    assert match, out.stdout[-2000:] + out.stderr[-2000:]
    assert float(match.group(1)) <= 2.0


def test_unit_is_type_notify_with_watchdog_and_credentials() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure",
                 "LoadCredential=router.password:",
                 "CapabilityBoundingSet=CAP_NET_RAW"):
        assert line in text


def test_unit_does_not_restart_on_what_a_restart_cannot_fix() -> None:
    """Bad config, no ICMP, another daemon on the same state directory or MQTT prefix."""
    from daemon.cli.core import EXIT_NOPERM
    from daemon.config import EXIT_CONFIG
    from daemon.instance import EXIT_RUNNING

    match = re.search(r"^RestartPreventExitStatus=(.+)$", UNIT.read_text(), re.MULTILINE)
    assert match, "the unit sets RestartPreventExitStatus"
    assert {EXIT_CONFIG, EXIT_NOPERM, EXIT_RUNNING} <= {int(v) for v in match.group(1).split()}


# What the daemon does after the grace, at most (MQTT's goodbye, the helpers' backstop),
# plus the interpreter's exit: all of it must fit between the grace and systemd's SIGKILL.
AFTER_GRACE_MARGIN = 10.0


def _seconds(value: str) -> float:
    """A systemd time span as the unit writes it: "200s", "3min", "3min 20s"."""
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)\s*([a-z]*)", value):
        total += float(number) * units[unit or "s"]
    return total


def test_stop_timeout_outlasts_the_daemons_longest_stop() -> None:
    """systemd must not SIGKILL a daemon that finishes a router apply on stop: the grace is
    `[router] action_timeout` (its default here), then the helpers' bound."""
    from daemon.app import HELPERS_STOP
    from daemon.config import RouterConfig
    from daemon.publish.mqtt import GOODBYE_TIMEOUT

    match = re.search(r"^TimeoutStopSec=(.+)$", UNIT.read_text(), re.MULTILINE)
    assert match, "the unit sets TimeoutStopSec"
    grace = RouterConfig.model_fields["action_timeout"].default
    assert GOODBYE_TIMEOUT <= HELPERS_STOP
    assert _seconds(match.group(1)) >= grace + HELPERS_STOP + AFTER_GRACE_MARGIN
