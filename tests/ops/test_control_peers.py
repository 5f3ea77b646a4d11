"""The control socket seen by another user: access by mode and group, uid from the kernel.

These run a client as `nobody` (uid 65534) in a subprocess, so they need root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from daemon.cli import build_parser, main
from daemon.control import ControlSetupError

from .conftest import Recorder, server_in_thread
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


@contextlib.contextmanager
def acting_as_nobody() -> Iterator[None]:
    """Effective uid/gid nobody, no supplementary groups; the real uid stays root.

    The daemon's side runs in this process (the virtual environment's python may live
    where `nobody` cannot read it); only synchronous code runs inside, and the finally
    clause restores root whatever happens.
    """
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOGROUP)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


async def test_daemon_outside_the_group_gets_a_clear_error_and_leaves_no_file(
        recorder: Recorder, shared_dir: Path) -> None:
    shared_dir.chmod(0o777)  # nobody may create its socket here
    path = shared_dir / "control.sock"
    server = recorder.server(path, group="root")
    coro = server.serve(asyncio.Event())
    with acting_as_nobody(), pytest.raises(ControlSetupError) as caught:
        coro.send(None)  # runs synchronously up to the failure: group, bind, chown
    coro.close()
    assert str(caught.value) == (
        f"control.group: cannot give {path} to group id 0 (Operation not permitted): the "
        "daemon must run as root or be a member of that group")
    assert list(shared_dir.iterdir()) == []


def test_cli_of_a_user_outside_the_group_exits_77(
        recorder: Recorder, shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_dir / "control.sock"
    build_parser()  # imports every CLI module now: the interpreter's files are root's only
    with structlog.testing.capture_logs(), server_in_thread(recorder, path):
        with acting_as_nobody():
            code = main(["status", "--socket", str(path)])
        _, err = capsys.readouterr()
    assert code == 77
    assert f"permission denied on {path}" in err
