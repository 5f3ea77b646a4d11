"""`dslfailover lab up && status && cut && status && down`, the commands an operator types."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daemon.lab.netns import netns_list
from daemon.lab.site import new_lab_id

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "lab", *args],
                          capture_output=True, text=True, timeout=120)


async def test_up_status_cut_status_down_from_the_command_line() -> None:
    lab_id = new_lab_id()
    try:
        up = _lab("up", "--id", lab_id, "--router-restart", "2.5")
        assert up.returncode == 0, up.stderr
        before = json.loads(_lab("status", "--id", lab_id, "--json").stdout)
        assert before["router"] == {"console": "cli", "restart_s": 2.5}
        assert before["circuits"]["primary"]["works"] and before["tunnel"]["works"]
        assert all(p["alive"] for p in before["processes"])
        assert _lab("cut", "--id", lab_id).returncode == 0
        after = json.loads(_lab("status", "--id", lab_id, "--json").stdout)
        assert after["circuits"]["primary"]["link"] == "down"
        assert not after["internet_from_inside"] and not after["tunnel"]["works"]
    finally:
        down = _lab("down", "--id", lab_id)
    assert down.returncode == 0, down.stderr
    assert [ns for ns in await netns_list() if ns.startswith(f"dslf-{lab_id}-")] == []


def test_status_of_a_lab_that_is_not_up_exits_1() -> None:
    result = _lab("status", "--id", new_lab_id())
    assert result.returncode == 1
    assert "not up" in result.stdout


def test_loss_above_100_percent_is_refused_by_the_command_line() -> None:
    result = _lab("loss", "101", "--id", new_lab_id())
    assert result.returncode == 2
    assert "0..100" in result.stderr


def test_a_bad_lab_id_is_refused_with_the_rule_it_broke() -> None:
    result = _lab("up", "--id", "Bad-Id")
    assert result.returncode == 1
    assert "lab id 'Bad-Id': use 1-10 characters a-z, 0-9" in result.stderr
