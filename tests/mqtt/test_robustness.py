"""Awkward brokers and payloads: a broker that never answers, TLS, values that are not JSON."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
from pathlib import Path

from daemon.lab.mosquitto import BrokerTls, Mosquitto
from daemon.model import AuditEvent, EventKind
from daemon.publish.mqtt import MqttPublisher
from tests.harness import free_port, wait_until

from .conftest import AT, WAIT, Logs, errors_in, mqtt_config, running, snapshot, watching


async def test_broker_that_never_answers_times_out_and_leaves_no_sockets(
        prefix: str, logs: Logs) -> None:
    open_conns: set[asyncio.StreamWriter] = set()
    attempts = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        open_conns.add(writer)
        try:
            while await reader.read(1024):
                pass  # swallow CONNECT and never send CONNACK
        finally:
            open_conns.discard(writer)
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = mqtt_config(Mosquitto(port=port), connect_timeout=0.3)
    pub = MqttPublisher(cfg, prefix=prefix, site="s", password=None)
    pub.backoff_initial, pub.backoff_max = 0.05, 0.1
    try:
        async with running(pub) as stop:
            await wait_until(lambda: attempts >= 3, WAIT, "3 connect attempts")
            # every timed-out attempt closed its socket: at most the current one is open
            assert len(open_conns) <= 1
            stop.set()
            loop = asyncio.get_running_loop()
            started = loop.time()
        assert loop.time() - started < 0.3 + 2.5
    finally:
        server.close()
    errors = errors_in(logs)
    assert len(errors) == 1
    assert "timed out" in errors[0]


async def test_event_detail_that_is_not_json_is_still_published(broker: Mosquitto,
                                                               prefix: str) -> None:
    pub = MqttPublisher(mqtt_config(broker), prefix=prefix, site="s", password=None)
    odd = AuditEvent(seq=1, at=AT, kind=EventKind.ACTION, from_state=None, to_state=None,
                     reason="r", detail={"gw": ipaddress.IPv4Address("10.0.0.1"),
                                         "loss": float("nan")})
    pub.publish_event(odd)
    async with watching(broker, f"{prefix}/event") as live, running(pub):
        await live.wait_for(lambda ms: len(ms) >= 1)
        assert pub.connected
    assert b'"gw": "10.0.0.1"' in live.messages[0].payload


def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


async def test_tls_with_our_ca_file_connects(tmp_path: Path, prefix: str) -> None:
    cert, key = make_cert(tmp_path)
    with Mosquitto(port=free_port(), tls=BrokerTls(cert, key)) as b:
        pub = MqttPublisher(mqtt_config(b, tls=True, ca_file=cert), prefix=prefix, site="s",
                            password=None)
        snap = snapshot()
        pub.publish_state(snap)
        ctx = ssl.create_default_context(cafile=str(cert))
        async with running(pub), watching(b, f"{prefix}/state", tls_context=ctx) as live:
            await live.wait_for(lambda ms: len(ms) >= 1)
        assert live.messages[0].json() == snap.as_dict()


async def test_tls_with_an_untrusted_certificate_is_a_logged_error(
        tmp_path: Path, prefix: str, logs: Logs) -> None:
    cert, key = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    other_cert, _ = make_cert(other)
    with Mosquitto(port=free_port(), tls=BrokerTls(cert, key)) as b:
        pub = MqttPublisher(mqtt_config(b, tls=True, ca_file=other_cert), prefix=prefix,
                            site="s", password=None)
        async with running(pub):
            await wait_until(lambda: errors_in(logs), WAIT, "an error logged")
            assert not pub.connected
    message = errors_in(logs)[0]
    assert f"127.0.0.1:{b.port}" in message
    assert "certificate verify failed" in message
