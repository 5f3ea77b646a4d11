"""One daemon per state directory and per MQTT prefix: a second `run` is refused at once.

Two real `dslfailover run` processes: the first runs (dry-run router, probes to
127.0.0.1), the second is started beside it and must exit with EXIT_RUNNING, naming the
first one's pid, without having touched anything the first one owns.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.instance import EXIT_RUNNING
from tests.harness import BIN, daemon_config, daemon_process, free_port

# Bounds the second `run`: it exits before it reads the router or opens a socket.
REFUSAL_TIMEOUT = 20.0


def second_run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "run", "-c", str(config)], capture_output=True,
                          text=True, timeout=REFUSAL_TIMEOUT)


async def test_a_second_daemon_on_the_same_state_directory_exits_at_once(
        tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    with daemon_process(config) as first:
        await first.wait_state("primary")
        second = second_run(config)
        assert second.returncode == EXIT_RUNNING, second.stderr
        assert f"pid {first.proc.pid}" in second.stderr
        assert str(tmp_path / "state" / "daemon.lock") in second.stderr
        # the first one still answers on its socket, which the second never took over
        await first.wait_state("primary")
        assert first.proc.poll() is None


async def test_a_second_daemon_on_the_same_mqtt_prefix_exits_at_once(tmp_path: Path) -> None:
    """Another state directory and socket, the same site's topics: refused too."""
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": free_port(), "prefix": "x/site"}
    one = daemon_config(tmp_path, "one.toml", mqtt=mqtt)
    other = daemon_config(tmp_path, "other.toml", mqtt=mqtt, state_dir=str(tmp_path / "s2"),
                          control={"socket": str(tmp_path / "other.sock")})
    with daemon_process(one) as first:
        await first.wait_state("primary")
        second = second_run(other)
        assert second.returncode == EXIT_RUNNING, second.stderr
        assert "MQTT prefix x/site" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr


async def test_a_daemon_killed_with_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    with daemon_process(config) as first:
        await first.wait_state("primary")
        first.kill9()
    with daemon_process(config) as again:
        await again.wait_state("primary")


def test_a_lock_that_cannot_be_taken_is_refused_with_the_reason(tmp_path: Path) -> None:
    """Not a traceback and a restart loop: exit 73 (the unit does not restart on it)."""
    config = daemon_config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "daemon.lock").symlink_to(tmp_path / "elsewhere")
    refused = second_run(config)
    assert refused.returncode == EXIT_RUNNING, refused.stderr
    assert "cannot take the lock for state directory" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "elsewhere").exists()
