"""The lab's mosquitto launcher: starts, restarts on the same port, cleans up, fails clearly."""

from __future__ import annotations

import socket
import subprocess
import uuid

import aiomqtt
import pytest

from daemon.lab.mosquitto import BrokerError, Mosquitto
from tests.harness import free_port

from .conftest import SUB_TIMEOUT


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_kills_the_broker_and_removes_its_temp_dir() -> None:
    b = Mosquitto(port=free_port())
    b.start()
    workdir = b.log_path.parent if b.log_path else None
    assert workdir is not None and workdir.is_dir()
    assert accepts(b.port)
    b.stop()
    assert not b.running
    assert not workdir.exists()
    assert not accepts(b.port)


def test_kill_then_start_serves_again_on_the_same_port() -> None:
    with Mosquitto(port=free_port()) as b:
        port = b.port
        b.kill()
        assert not accepts(port)
        b.start()
        assert b.port == port
        assert accepts(port)


def test_a_taken_port_is_a_clear_error_and_nothing_is_left_behind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        b = Mosquitto(port=taken.getsockname()[1])
        with pytest.raises(BrokerError, match=r"exited with .*log tail") as err:
            b.start()
    assert "Address already in use" in str(err.value)
    assert not b.running
    assert b.log_path is None  # the temp dir is gone


async def test_async_context_manager_with_users_refuses_anonymous() -> None:
    async with Mosquitto(users={"u": "pw"}) as b:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", b.port, timeout=SUB_TIMEOUT):
                pass
        async with aiomqtt.Client("127.0.0.1", b.port, username="u", password="pw",
                                  timeout=SUB_TIMEOUT) as c:
            await c.publish("t", "x", qos=1, timeout=SUB_TIMEOUT)
    assert not b.running


@pytest.mark.root
def test_broker_in_a_network_namespace_serves_only_there() -> None:
    ns = f"dslf-mq-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        port = free_port()
        with Mosquitto(port=port, netns=ns) as b:
            assert b.running
            inside = subprocess.run(
                ["ip", "netns", "exec", ns, "mosquitto_pub", "-h", "127.0.0.1", "-p",
                 str(port), "-t", "t", "-m", "x", "-q", "1"],
                capture_output=True, timeout=10)
            assert inside.returncode == 0, inside.stderr
            assert not accepts(port)  # our own namespace's loopback has no broker
        assert not b.running
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
