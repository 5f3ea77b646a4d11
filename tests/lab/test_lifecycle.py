"""Up and down: everything the lab makes is gone afterwards, also after a crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from daemon.lab import netns
from daemon.lab.netns import LabError
from daemon.lab.site import Lab, new_lab_id

pytestmark = pytest.mark.root


def _netns_inodes(lab: Lab) -> set[int]:
    return {os.stat(f"/run/netns/{ns}").st_ino for ns in lab.topo.namespaces}


def _processes_in(inodes: set[int]) -> list[int]:
    """Every process on the machine whose network namespace is one of `inodes`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            link = os.readlink(entry / "ns" / "net")
        except OSError:
            continue
        if int(link.removeprefix("net:[").rstrip("]")) in inodes:
            found.append(int(entry.name))
    return found


async def _lab_namespaces(lab: Lab) -> list[str]:
    return [ns for ns in await netns.netns_list() if ns.startswith(lab.topo.prefix)]


async def _assert_all_gone(lab: Lab, inodes: set[int]) -> None:
    assert await _lab_namespaces(lab) == []
    assert [p for p in _processes_in(inodes) if netns.pid_alive(p)] == []
    assert not lab.state_file.exists()
    assert not lab.dir.exists()


async def test_up_creates_seven_namespaces_and_a_state_file_listing_them(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        state = json.loads(lab.state_file.read_text())
        assert sorted(state["namespaces"]) == sorted(await _lab_namespaces(lab))
        assert len(state["links"]) == 7 and state["status"] == "up"
    finally:
        await lab.down()


async def test_up_then_down_leaves_no_namespace_link_or_process(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        await lab.spawn("inside", ["sleep", "300"], name="sleeper")
        inodes = _netns_inodes(lab)
        assert _processes_in(inodes)
    finally:
        await lab.down()
    # the veth pairs, bridge and tunnel devices live only in these namespaces: a namespace
    # that no process holds any more is freed by the kernel with all its links
    await _assert_all_gone(lab, inodes)


async def test_up_refuses_a_lab_id_that_already_exists(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        with pytest.raises(LabError, match="already exists"):
            await Lab(lab.lab_id, root=lab_root, services=False).up()
    finally:
        await lab.down()


_CRASHING_LAB = """
import asyncio, os, sys
from pathlib import Path
from daemon.lab.site import Lab

async def main():
    lab = Lab(sys.argv[1], root=Path(sys.argv[2]), services=False)
    await lab.up()
    await lab.spawn("inside", ["sleep", "300"], name="sleeper")
    await lab.spawn("remote", ["sleep", "300"], name="sleeper2")
    print("ready", flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


async def test_down_after_a_crash_removes_everything_from_the_state_file(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_LAB, lab.lab_id, str(lab_root),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            assert (await proc.stdout.readline()).strip() == b"ready"
        inodes = _netns_inodes(lab)
        proc.send_signal(signal.SIGKILL)  # the process that made the lab dies hard
        await proc.wait()
        assert lab.state_file.exists() and _processes_in(inodes)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        removed = await Lab(lab.lab_id, root=lab_root, services=False).down()
    assert any(item.startswith("process sleeper") for item in removed)
    await _assert_all_gone(lab, inodes)


async def test_down_without_a_state_file_finds_the_namespaces_by_prefix(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        await lab.spawn("router", ["sleep", "300"], name="sleeper")
        inodes = _netns_inodes(lab)
        lab.state_file.unlink()  # crashed before the state file was written, or lost
        removed = await Lab(lab.lab_id, root=lab_root, services=False).down()
    finally:
        await lab.down()
    assert len([r for r in removed if r.startswith("netns ")]) == 7
    await _assert_all_gone(lab, inodes)


async def test_a_failed_bring_up_removes_what_it_had_made(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    # a file where the lab wants its state directory: fails after the namespaces exist
    lab.dir.mkdir(parents=True)
    (lab.dir / "state").write_text("in the way")
    with pytest.raises(LabError, match="cannot write the lab's files"):
        await lab.up()
    assert await _lab_namespaces(lab) == []
    assert not lab.state_file.exists()


async def test_down_leaves_alone_a_recorded_pid_now_outside_the_lab(lab_root: Path) -> None:
    # after a crash and a long time, a recorded pid may belong to someone else
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    bystander = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    try:
        await lab.up()
        state = json.loads(lab.state_file.read_text())
        state["processes"].append({"name": "reused", "ns": lab.ns("inside"),
                                   "pid": bystander.pid, "argv": ["sleep"], "log": ""})
        lab.state_file.write_text(json.dumps(state))
        await Lab(lab.lab_id, root=lab_root, services=False).down()
        assert netns.pid_alive(bystander.pid)
    finally:
        bystander.kill()
        await bystander.wait()
        await lab.down()


async def test_down_with_a_corrupt_state_file_still_removes_the_lab(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        lab.state_file.write_text('{"namespaces": [')  # torn write
        removed = await Lab(lab.lab_id, root=lab_root, services=False).down()
    finally:
        await lab.down()
    assert any("unreadable lab state" in item for item in removed)
    assert await _lab_namespaces(lab) == []
    assert not lab.state_file.exists()


async def test_spawn_refuses_a_process_name_that_is_not_a_plain_file_name(lab_root: Path) -> None:
    lab = Lab(new_lab_id(), root=lab_root, services=False)
    try:
        await lab.up()
        with pytest.raises(LabError, match=r"process name '\.\./x'"):
            await lab.spawn("inside", ["sleep", "1"], name="../x")
    finally:
        await lab.down()
