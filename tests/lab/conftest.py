"""Fixtures for lab tests: a fresh lab per test (bring-up takes a fraction of a second)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.lab.netns import LabError
from daemon.lab.site import Lab, SpawnedProcess, running_lab
from daemon.lab.topology import INSIDE_ADDR

# Bounds waiting for the SMTP sink in the inside namespace to accept connections.
SINK_READY_TIMEOUT = 5.0
# How long the lab's router is away when it restarts to apply a change, in these tests:
# a real restart (the connection drops, the WAN changes only when it is back), but short,
# to keep the suite fast (the lab's default is 20 s; the bench uses that).
LAB_ROUTER_RESTART = 2.0


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    return tmp_path / "labs"


@pytest.fixture
async def lab(lab_root: Path) -> AsyncIterator[Lab]:
    async with running_lab(root=lab_root, services=False) as lab:
        yield lab


_WAIT_FOR_PORT = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("nothing listens on %s:%s" % (sys.argv[1], sys.argv[2]))
        time.sleep(0.05)
"""


async def wait_for_port(lab: Lab, ns: str, host: str, port: int,
                        timeout: float = SINK_READY_TIMEOUT) -> None:
    await lab.exec(ns, [sys.executable, "-c", _WAIT_FOR_PORT, host, str(port), str(timeout)],
                   timeout=timeout + 5)


async def start_sink(lab: Lab) -> SpawnedProcess:
    """aiosmtpd's own server as our mail server on inside :25; it prints each message."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await lab.spawn("inside", [sys.executable, "-m", "aiosmtpd", "-n", "-c",
                                      "aiosmtpd.handlers.Debugging", "-l",
                                      f"{INSIDE_ADDR}:25"], name="sink", env=env)
    try:
        await wait_for_port(lab, "inside", str(INSIDE_ADDR), 25)
    except LabError:
        raise LabError("sink did not start: " + Path(proc.log).read_text()) from None
    return proc
