"""The daemon's backup-MX actions in a child process each (postfix_sync.worker, the
daemon's RemoteMx), against the real sshd + private Postfix of tests/mx: the same
reports and errors as BackupMx in-process, no asyncssh in the caller, no child left."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import pytest

from daemon.executor import Executor, RemoteMx
from daemon.machine import ApplyWan, RouterResult
from daemon.model import Circuit
from postfix_sync import BackupMx, MxConnectError, MxHostKeyError
from postfix_sync.worker import MxWorker, settings_to_json
from router_drivers import RouterSettings, create_driver
from tests.harness import BACKUP, PRIMARY, finished, free_port, wait_until

from .conftest import MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


def workers() -> list[int]:
    """Pids of this process's children running postfix_sync.worker."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue   # gone meanwhile
        if int(stat[stat.rindex(")") + 2:].split()[1]) == os.getpid() \
                and b"postfix_sync.worker" in argv:
            found.append(int(pid))
    return found


async def test_a_verify_in_a_child_reports_what_backup_mx_does(mx: MxWorld) -> None:
    settings = mx.settings()
    report = await MxWorker(settings).verify()
    async with BackupMx(settings) as direct:
        expected = await direct.verify()
    assert report.ok
    assert [(c.name, c.ok) for c in report.checks] == [(c.name, c.ok) for c in expected.checks]
    assert workers() == []


async def test_flush_in_a_child_reports_the_command(mx: MxWorld) -> None:
    report = await MxWorker(mx.settings()).flush()
    assert report.command.startswith("postqueue -c ")
    assert report.deferred_after == 0


@pytest.mark.parametrize("case", ["sshd_not_listening", "unknown_host_key"])
async def test_an_error_in_the_child_is_raised_with_its_class_and_step(
        mx: MxWorld, tmp_path: Path, case: str) -> None:
    if case == "sshd_not_listening":
        settings, error = mx.settings(port=free_port()), MxConnectError
    else:
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        settings, error = mx.settings(known_hosts=empty), MxHostKeyError
    with pytest.raises(error) as raised:
        await MxWorker(settings).verify()
    assert type(raised.value) is error
    assert raised.value.step == "connect"


async def test_a_prepared_child_serves_the_next_action_and_close_ends_an_unused_one(
        mx: MxWorld) -> None:
    worker = MxWorker(mx.settings())
    await worker.prepare()
    prepared = workers()
    assert len(prepared) == 1
    await worker.prepare()            # one is ready: no second
    assert workers() == prepared
    assert (await worker.verify()).ok
    assert workers() == []
    await worker.prepare()
    await worker.close()
    assert workers() == []


async def test_a_failover_apply_that_fails_leaves_no_prepared_child(mx: MxWorld) -> None:
    """The executor prepares the checks' child as a failover apply starts; when the apply
    fails, no checks follow and the child ends with it (no pipes held at rest)."""
    nobody = RouterSettings(host="127.0.0.1", port=free_port(), connect_timeout=2.0)
    executor = Executor(create_driver("netopia-cli", nobody), primary=PRIMARY,
                        backup=BACKUP, mx=RemoteMx(mx.settings()), router_timeout=10.0,
                        mx_timeout=10.0)
    outcome = await executor.run(ApplyWan(1, Circuit.BACKUP, "test"))
    assert isinstance(outcome.event, RouterResult) and not outcome.event.ok
    assert workers() == []


async def test_a_cancelled_action_leaves_no_child(mx: MxWorld) -> None:
    worker = MxWorker(mx.settings())
    task = asyncio.create_task(worker.verify())
    await wait_until(lambda: workers(), 10.0, "the verify's child to run")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert workers() == []


async def test_the_caller_never_imports_asyncssh(mx: MxWorld) -> None:
    """The daemon's process after a verify and a flush: asyncssh and cryptography
    stayed in the children (they cost it ~17 MB of RSS for good)."""
    script = (
        "import asyncio, json, sys\n"
        "from daemon.executor import RemoteMx\n"
        "from postfix_sync.worker import settings_from_json\n"
        "mx = RemoteMx(settings_from_json(json.loads(sys.argv[1])))\n"
        "async def main():\n"
        "    await mx.prepare()\n"
        "    ok = (await mx.verify()).ok\n"
        "    await mx.flush()\n"
        "    return ok\n"
        "ok = asyncio.run(main())\n"
        "print(json.dumps({'ok': ok, 'loaded': sorted(m for m in ('asyncssh', "
        "'cryptography') if m in sys.modules)}))\n")
    assert RemoteMx is MxWorker
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, json.dumps(settings_to_json(mx.settings())),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    code, out, err = await finished(proc, 60.0)
    assert code == 0, err
    assert json.loads(out) == {"ok": True, "loaded": []}
