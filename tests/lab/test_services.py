"""The lab with its services: router emulator, sink, mosquitto, sshd and Postfix, used the
way the daemon uses them (its own CLI, run in the inside namespace)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from daemon.lab import netns
from daemon.lab.site import Lab, running_lab
from daemon.lab.topology import BACKUP, PRIMARY

from .conftest import LAB_ROUTER_RESTART

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Bounds one run of the daemon's CLI inside the lab (router dialogue, SSH to the MX).
CLI_TIMEOUT = 60.0
# Bounds the wait for a message to cross backup MX -> tunnel -> pinhole -> sink.
DELIVERY_TIMEOUT = 15.0



@pytest.fixture
async def full_lab() -> AsyncIterator[Lab]:
    # the default root: Postfix (user postfix) must reach its queue below the lab dir,
    # and pytest's tmp_path is private to root
    async with running_lab(services=True, router_restart=LAB_ROUTER_RESTART) as lab:
        yield lab


async def _cli(lab: Lab, *args: str) -> netns.CommandResult:
    return await lab.exec("inside", [sys.executable, "-m", "daemon.cli", *args,
                                     "-c", str(lab.config_path)],
                          check=False, timeout=CLI_TIMEOUT)


async def test_router_show_from_inside_reads_the_primary_config_from_the_emulator(
        full_lab: Lab) -> None:
    result = await _cli(full_lab, "router", "show", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["address"], shown["gateway"]) == (str(PRIMARY.router), str(PRIMARY.gateway.ip))


async def test_router_apply_backup_moves_the_wan_and_rekeys_the_tunnel(full_lab: Lab) -> None:
    await full_lab.cut()
    result = await _cli(full_lab, "router", "apply", "backup")
    assert result.returncode == 0, result.stderr
    assert await full_lab.read_wan() == BACKUP.wan
    status = await full_lab.status()
    assert status["internet_from_inside"] and status["tunnel"]["works"]


async def test_mx_verify_passes_every_check_through_the_tunnel(full_lab: Lab) -> None:
    result = await _cli(full_lab, "mx", "verify", "--json")
    report = json.loads(result.stdout)
    assert report["ok"], report
    assert {c["name"] for c in report["checks"]} >= {"transport_compiled", "mail_path"}


async def test_mail_sent_to_the_backup_mx_arrives_at_the_inside_sink(full_lab: Lab) -> None:
    await full_lab.send_to_backup_mx("via-backup-mx")
    assert await _wait_for_subject(full_lab, "via-backup-mx", DELIVERY_TIMEOUT)


async def test_down_stops_every_service_including_postfix_and_sshd() -> None:
    lab = Lab("s" + os.urandom(3).hex(), services=True)
    try:
        await lab.up()
        inodes = _netns_inodes(lab)
        remote_pids = await netns.netns_pids(lab.ns("remote"))
        assert len(remote_pids) >= 2  # sshd and the Postfix master at least
    finally:
        await lab.down()
    assert [p for p in remote_pids if netns.pid_alive(p)] == []
    assert _processes_in(inodes) == []
    assert not lab.dir.exists()


_CRASHING_LAB = """
import asyncio, sys
from daemon.lab.site import Lab

async def main():
    lab = Lab(sys.argv[1], services=True)
    await lab.up()
    print("ready", flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_down_after_a_crash_of_lab_and_services_leaves_nothing() -> None:
    lab = Lab("c" + os.urandom(3).hex(), services=True)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CRASHING_LAB,
                                                lab.lab_id, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            assert (await proc.stdout.readline()).strip() == b"ready"
        inodes = _netns_inodes(lab)
        proc.kill()  # the process that made the lab dies hard ...
        await proc.wait()
        os.kill(lab.services()["pid"], signal.SIGKILL)  # ... and so does the services process
        await asyncio.sleep(0.2)
        orphans = _processes_in(inodes)
        assert orphans  # sshd, Postfix, mosquitto, the emulator are still running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await Lab(lab.lab_id).down()
    assert [p for p in orphans if netns.pid_alive(p)] == []
    assert _processes_in(inodes) == []
    assert not lab.dir.exists() and not lab.state_file.exists()


def _netns_inodes(lab: Lab) -> set[int]:
    return {os.stat(f"/run/netns/{ns}").st_ino for ns in lab.topo.namespaces}


def _processes_in(inodes: set[int]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            link = os.readlink(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if int(link.removeprefix("net:[").rstrip("]")) in inodes and netns.pid_alive(int(entry)):
            found.append(int(entry))
    return found


async def _wait_for_subject(lab: Lab, subject: str, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if any(m["subject"] == subject for m in lab.sink_messages()):
            return True
        await asyncio.sleep(0.1)
    return False


async def _deferred_at_backup_mx(lab: Lab, timeout: float) -> bool:
    config_dir = lab.services()["postfix"]["config_dir"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        out = (await lab.exec("remote", ["postqueue", "-c", config_dir, "-j"])).stdout
        if any(json.loads(line).get("queue_name") == "deferred" for line in out.splitlines()):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_mail_queued_during_a_cut_arrives_after_failover_and_a_flush(
        full_lab: Lab) -> None:
    await full_lab.cut()
    await full_lab.send_to_backup_mx("queued-in-outage")
    # Postfix tries the dead tunnel, fails (no ARP answer through it) and defers the mail;
    # a flush before that would race the attempt still in progress
    assert await _deferred_at_backup_mx(full_lab, DELIVERY_TIMEOUT)
    assert not any(m["subject"] == "queued-in-outage" for m in full_lab.sink_messages())
    await full_lab.set_wan("backup")
    config_dir = full_lab.services()["postfix"]["config_dir"]
    await full_lab.exec("remote", ["postqueue", "-c", config_dir, "-f"])
    assert await _wait_for_subject(full_lab, "queued-in-outage", DELIVERY_TIMEOUT)
