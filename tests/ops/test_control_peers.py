"""The control socket seen by another user: access by mode and group, uid from the kernel.

These run a client as `nobody` (uid 65534) in a subprocess, so they need root.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Recorder
from .test_control import serving

pytestmark = pytest.mark.root

NOBODY = 65534
NOGROUP = 65534
# Bounds the client subprocess (python start-up, one exchange).
CLIENT_TIMEOUT = 20.0

# The client uses only the standard library: it runs as `nobody`, which need not be able to
# read this checkout or its virtual environment.
CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile("rb").readline().decode().strip())
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    # pytest's tmp_path is 0700 root: `nobody` could not even reach the socket in it
    path = Path(tempfile.mkdtemp(prefix="dslfailover-ctl-"))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def as_nobody(path: Path, message: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", "-I", "-c", CLIENT, str(path), json.dumps(message),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        user=NOBODY, group=NOGROUP, extra_groups=[], cwd="/")
    async with asyncio.timeout(CLIENT_TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    return out.decode().strip()


async def test_user_outside_the_group_cannot_connect(
        recorder: Recorder, shared_dir: Path) -> None:
    path = shared_dir / "control.sock"
    async with serving(recorder.server(path)):
        out = await as_nobody(path, {"op": "command", "action": "failover", "reason": "x"})
    assert out == "EACCES"
    assert recorder.submitted == []


async def test_group_member_command_carries_its_own_uid(
        recorder: Recorder, shared_dir: Path) -> None:
    path = shared_dir / "control.sock"
    async with serving(recorder.server(path, group="nogroup")):
        out = await as_nobody(path, {"op": "command", "action": "hold", "reason": "night"})
    assert json.loads(out) == {"ok": True, "accepted": True, "detail": "queued"}
    [cmd] = recorder.submitted
    assert cmd.source.startswith(f"control uid={NOBODY} pid=")
    assert cmd.source != f"control uid={os.getuid()} pid={os.getpid()}"
