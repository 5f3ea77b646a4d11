"""examples/dashboard.py against a real mosquitto: retained state, events, bad payloads."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import aiomqtt
import pytest

from daemon.lab.mosquitto import Mosquitto
from tests.harness import finished, free_port

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "dashboard.py"
# Bounds one dashboard run (python start-up, connect, --wait, print).
RUN_TIMEOUT = 20.0
# Bounds publishing to the test broker.
PUBLISH_TIMEOUT = 5.0

STATE = {"state": "backup", "circuit": "backup", "primary_link": "down", "mail_path": "ok",
         "since": "2026-11-25T03:59:58.250Z", "reason": "primary down: 3/3 targets lost",
         "seq": 12, "version": "0.1.0"}


@pytest.fixture
def root() -> str:
    # a topic root of its own per test: retained messages of other tests stay invisible
    return f"t{uuid.uuid4().hex[:12]}"


async def publish(broker: Mosquitto, *messages: tuple[str, bytes, bool]) -> None:
    async with asyncio.timeout(PUBLISH_TIMEOUT), aiomqtt.Client(broker.host, broker.port) as c:
        for topic, payload, retain in messages:
            await c.publish(topic, payload, qos=1, retain=retain)


async def start(port: int, root: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "COLUMNS": "220", "NO_COLOR": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(DASHBOARD), "--host", "127.0.0.1", "--port", str(port),
        "--root", root, "--once", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    return await finished(proc, RUN_TIMEOUT)


def row(out: str, site: str) -> list[str]:
    """The cells of a site's row in the printed table."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0] == site:
            return cells
    raise AssertionError(f"no row for {site} in:\n{out}")


async def test_once_shows_the_retained_state_of_a_site(broker: Mosquitto, root: str) -> None:
    await publish(broker, (f"{root}/unixwiz/state", json.dumps(STATE).encode(), True),
                  (f"{root}/unixwiz/availability", b"online", True))
    code, out, err = await finish(await start(broker.port, root))
    assert code == 0, err
    cells = row(out, "unixwiz")
    assert cells[1:6] == ["online", "backup", "backup", "down", "ok"]
    assert cells[6].startswith("2026-11-25 03:59:58Z (")
    assert cells[7] == "primary down: 3/3 targets lost"


async def test_malformed_state_is_shown_as_such_and_other_sites_still_show(
        broker: Mosquitto, root: str) -> None:
    await publish(broker, (f"{root}/broken/state", b"{not json", True),
                  (f"{root}/odd/state", json.dumps({**STATE, "state": "exploded"}).encode(),
                   True),
                  (f"{root}/unixwiz/state", json.dumps(STATE).encode(), True),
                  (f"{root}/unixwiz/availability", b"maybe", True))
    code, out, err = await finish(await start(broker.port, root))
    assert code == 0, err
    assert "malformed state payload: not JSON" in " ".join(row(out, "broken"))
    assert "malformed state payload: state: 'exploded' is not one of" in " ".join(
        row(out, "odd"))
    unixwiz = row(out, "unixwiz")
    assert unixwiz[2] == "backup"
    assert "malformed availability payload: 'maybe' is not online/offline" in unixwiz[7]


async def test_events_arriving_while_it_listens_are_listed(
        broker: Mosquitto, root: str) -> None:
    proc = await start(broker.port, root, "--wait", "3")
    assert proc.stderr is not None
    async with asyncio.timeout(RUN_TIMEOUT):
        line = await proc.stderr.readline()
    assert b"subscribed" in line
    events = [
        {"seq": 11, "at": "2026-11-25T03:59:55.000Z", "kind": "transition",
         "from": "primary", "to": "failing_over", "reason": "primary down", "detail": {}},
        {"seq": 12, "at": "2026-11-25T03:59:58.250Z", "kind": "transition",
         "from": "failing_over", "to": "backup", "reason": "mail path verified",
         "detail": {}},
    ]
    await publish(broker, *[(f"{root}/unixwiz/event", json.dumps(e).encode(), False)
                            for e in events],
                  (f"{root}/unixwiz/event", b'{"seq": 13, "kind": "nonsense"}', False))
    code, out, err = await finish(proc)
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    start_at = lines.index("last events of unixwiz:")
    assert lines[start_at + 1:start_at + 4] == [
        "03:59:55 #11 transition primary → failing_over: primary down",
        "03:59:58 #12 transition failing_over → backup: mail path verified",
        "malformed event payload: kind: 'nonsense' is not one of transition, action, "
        "probe_alarm, command",
    ]


async def test_unreachable_broker_exits_69(root: str) -> None:
    code, _, err = await finish(await start(free_port(), root))
    assert code == 69
    assert "cannot reach the broker at 127.0.0.1:" in err


async def test_without_rich_and_aiomqtt_it_says_what_to_install() -> None:
    # -S: no site-packages, as a system Python without the [dashboard] extra
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-S", str(DASHBOARD), "--once",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, _, err = await finish(proc)
    assert code == 1
    assert "dashboard: needs rich and aiomqtt" in err
    assert "pip install 'dslfailover[dashboard]'" in err
    assert "Traceback" not in err


async def test_once_into_a_pipe_is_not_squeezed_to_80_columns(
        broker: Mosquitto, root: str) -> None:
    long_reason = "primary down: " + "x" * 100
    await publish(broker, (f"{root}/s1/state", json.dumps(
        {**STATE, "reason": long_reason}).encode(), True))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(DASHBOARD), "--host", "127.0.0.1", "--port", str(broker.port),
        "--root", root, "--once", env={**env, "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, out, err = await finish(proc)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) > 80
