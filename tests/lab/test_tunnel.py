"""The tunnel: carries port 25 from the customer network to our sink only while the router's
WAN is up and the tunnel is keyed to the router's current WAN address."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from daemon.lab import netns
from daemon.lab.rekey import rekey_command
from daemon.lab.site import Lab
from daemon.lab.topology import BACKUP, MX_ADDR, PRIMARY, TUNNEL_REMOTE, TUNNEL_ROUTER

from .conftest import start_sink

pytestmark = pytest.mark.root

# From the customer's side (remote), send one message to the router's tunnel address:25,
# which the pinhole forwards to the inside sink. Exit 0 only when the sink accepted it.
_SEND = """
import smtplib, sys
with smtplib.SMTP(sys.argv[1], 25, timeout=float(sys.argv[3])) as smtp:
    smtp.sendmail("mx@remote.lab.test", ["user@lab.test"],
                  "Subject: %s\\r\\n\\r\\nthrough the tunnel\\r\\n" % sys.argv[2])
"""
# Bounds one SMTP attempt from remote: connect, banner and each reply.
SMTP_TIMEOUT = 2.0


async def _send_from_remote(lab: Lab, subject: str) -> bool:
    result = await lab.exec("remote", [sys.executable, "-c", _SEND, str(TUNNEL_ROUTER.ip),
                                       subject, str(SMTP_TIMEOUT)],
                            check=False, timeout=SMTP_TIMEOUT * 4)
    return result.returncode == 0


async def test_tunnel_carries_smtp_from_remote_to_the_inside_sink_on_primary(lab: Lab) -> None:
    sink = await start_sink(lab)
    assert await _send_from_remote(lab, "hello-primary")
    assert "Subject: hello-primary" in Path(sink.log).read_text()


async def test_tunnel_carries_nothing_after_a_cut(lab: Lab) -> None:
    await start_sink(lab)
    await lab.cut()
    assert not await _send_from_remote(lab, "after-cut")


async def test_tunnel_carries_nothing_when_the_wan_moved_but_was_not_rekeyed(lab: Lab) -> None:
    await start_sink(lab)
    await lab.cut()
    await lab.set_wan("backup", rekey_tunnel=False)
    assert not await _send_from_remote(lab, "stale-key")


async def test_tunnel_carries_smtp_again_once_rekeyed_on_the_backup(lab: Lab) -> None:
    sink = await start_sink(lab)
    await lab.cut()
    await lab.set_wan("backup")
    assert await _send_from_remote(lab, "hello-backup")
    assert "Subject: hello-backup" in Path(sink.log).read_text()


async def test_rekey_hook_run_in_the_router_namespace_rebuilds_the_tunnel(lab: Lab) -> None:
    # what the router emulator does after an apply: change the WAN, then run the hook
    await lab.cut()
    await lab.set_wan("backup", rekey_tunnel=False)
    line = rekey_command(lab.topo).format(address=BACKUP.router, netmask=BACKUP.gateway.netmask,
                                          gateway=BACKUP.gateway.ip, prefixlen=29)
    await lab.exec("router", ["sh", "-c", line])
    sink = await start_sink(lab)
    assert await _send_from_remote(lab, "hook")
    assert "Subject: hook" in Path(sink.log).read_text()


async def test_inside_reaches_the_backup_mx_only_through_the_tunnel(lab: Lab) -> None:
    inside = lab.ns("inside")
    assert (await netns.ping(inside, str(MX_ADDR), wait=0.5)).received == 1
    await lab.exec("router", ["ip", "link", "del", "tun0"])
    assert (await netns.ping(inside, str(MX_ADDR), wait=0.5)).received == 0


async def test_rekey_to_the_address_already_keyed_leaves_the_tunnel_alone(lab: Lab) -> None:
    before = (await lab.exec("router", ["ip", "-j", "link", "show", "tun0"])).stdout
    assert not await lab.rekey(PRIMARY.router)
    after = (await lab.exec("router", ["ip", "-j", "link", "show", "tun0"])).stdout
    assert json.loads(before)[0]["ifindex"] == json.loads(after)[0]["ifindex"]


async def test_rekey_to_a_new_address_recreates_both_ends(lab: Lab) -> None:
    await lab.set_wan("backup", rekey_tunnel=False)
    assert await lab.rekey(BACKUP.router)
    assert (await netns.ping(lab.ns("router"), str(TUNNEL_REMOTE.ip), wait=1.0)).received == 1
