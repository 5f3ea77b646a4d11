"""The daemon in the lab, end to end: real namespaces, the Netopia emulator really
re-addressing the router, the tunnel re-keyed, a real Postfix backup MX, a real broker.

The lab's router restarts to apply a change (saved vs running; the WAN and the tunnel
change only when it is back), here after LAB_ROUTER_RESTART seconds away.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.lab import netns
from daemon.lab.runner import DaemonInLab
from daemon.lab.site import Lab, SpawnedProcess, running_lab
from daemon.lab.topology import BACKUP
from tests.harness import wait_polled, wait_until

from .conftest import LAB_ROUTER_RESTART

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Bounds each wait for a state in these tests (detection is ~3 s, a failover ~2 s more
# plus the router's restart).
STATE_TIMEOUT = 40.0 + LAB_ROUTER_RESTART
# Bounds the live proof in the test where the backup does not route (the default 15 s
# would only make the test slower).
SHORT_PROOF = 3.0
# The steps every failover and failback reports in its evidence (seconds each).
# Probe rounds the daemon runs at 20 % loss in the test that it does not fail over.
LOSS_ROUNDS = 90
FAILOVER_STEPS = {"detect", "dialogue", "restart_wait", "live_proof", "mx_checks"}
FAILBACK_STEPS = {"dialogue", "restart_wait", "live_proof"}


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with running_lab(console="cli", router_restart=LAB_ROUTER_RESTART) as lab:
        yield lab


@pytest.fixture(params=["cli", "menu"])
async def either_lab(request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    async with running_lab(console=request.param, router_restart=LAB_ROUTER_RESTART) as lab:
        yield lab


async def subscribe(lab: Lab) -> SpawnedProcess:
    """mosquitto_sub on the daemon's topics in `inside`, subscribed: a marker message
    published under them has come back."""
    topics = f"dslfailover/lab-{lab.lab_id}"
    sub = await lab.spawn("inside", [
        "mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-v", "-q", "1",
        "-t", f"{topics}/#"], name="subscriber")
    marker = f"{topics}/test-marker"

    async def marker_seen() -> bool:
        if any(t == marker for t, _ in mqtt_lines(sub)):
            return True
        await lab.exec("inside", ["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883",
                                  "-t", marker, "-m", "x"], check=False)
        return False

    await wait_polled(marker_seen, bool, 10.0, "the subscriber's marker message", step=0.1)
    return sub


def mqtt_lines(sub: SpawnedProcess) -> list[tuple[str, str]]:
    lines = Path(sub.log).read_text(errors="replace").splitlines()
    return [(t, p) for t, _, p in (ln.partition(" ") for ln in lines)]


def mqtt_events(sub: SpawnedProcess) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in mqtt_lines(sub) if t.endswith("/event")]


async def wait_delivered(lab: Lab, subjects: set[str], timeout: float) -> None:
    def got() -> set[str]:
        return {str(m["subject"]) for m in lab.sink_messages()}

    await wait_until(lambda: subjects <= got(), timeout, f"mail {sorted(subjects)} at our sink",
                     detail=lambda: sorted(subjects - got()), step=0.1)


def transition_events(daemon: DaemonInLab, src: str, dst: str) -> list[dict[str, object]]:
    daemon.read()
    return [e for e in daemon.events if e.get("event_kind") == "transition"
            and (e.get("state_from"), e.get("state_to")) == (src, dst)]


async def test_failover_and_failback_deliver_every_outage_mail_in_order_on_mqtt(
        either_lab: Lab) -> None:
    lab = either_lab
    sub = await subscribe(lab)
    daemon = DaemonInLab(lab)
    await daemon.start()
    await daemon.wait_state("primary", STATE_TIMEOUT)
    await lab.cut()
    outage = {f"outage {i}" for i in range(3)}
    for subject in sorted(outage):
        await lab.send_to_backup_mx(subject)
    status = await daemon.wait_state("backup", STATE_TIMEOUT)
    assert status["circuit"] == "backup"
    assert status["mail_path"] == "ok"
    wan = await lab.read_wan()
    assert wan is not None and str(wan.address) == "10.12.0.2"  # really re-addressed
    await wait_delivered(lab, outage, 20.0)
    # the failback's live proof runs once the router is back from its restart, long
    # after isp1's link is up again
    await lab.restore()
    answer = await daemon.command("failback", "test: primary restored")
    assert answer["accepted"], answer
    await daemon.wait_state("primary", STATE_TIMEOUT)
    await lab.send_to_backup_mx("after failback")
    await wait_delivered(lab, {"after failback"}, 20.0)
    await daemon.stop()

    assert daemon.transitions() == [
        ("starting", "primary"), ("primary", "failing_over"), ("failing_over", "backup"),
        ("backup", "failing_back"), ("failing_back", "primary")]
    # the subscriber saw the same transitions, in order, with increasing seq

    def seen_on_mqtt() -> list[tuple[str, str]]:
        return [(e["from"], e["to"]) for e in mqtt_events(sub) if e["kind"] == "transition"]

    await wait_until(lambda: len(seen_on_mqtt()) >= 5, 10.0, "5 transitions on MQTT",
                     detail=seen_on_mqtt)
    events = mqtt_events(sub)
    seen = seen_on_mqtt()
    assert seen == daemon.transitions()
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    # nothing bounced: every message is in our sink exactly once
    subjects = [m["subject"] for m in lab.sink_messages()]
    assert sorted(subjects) == sorted([*outage, "after failback"])
    # each move says how long each of its steps took: in the journal/log line ...
    (backup,) = transition_events(daemon, "failing_over", "backup")
    (primary,) = transition_events(daemon, "failing_back", "primary")
    for event, steps in ((backup, FAILOVER_STEPS), (primary, FAILBACK_STEPS)):
        durations = event["durations_s"]
        assert isinstance(durations, dict) and steps <= durations.keys(), event
        assert all(isinstance(v, float) and v >= 0 for v in durations.values()), durations
        # the router really restarted to apply, and the daemon waited for it
        assert durations["restart_wait"] >= LAB_ROUTER_RESTART * 0.9, durations
    # ... and on MQTT
    on_mqtt = [e for e in events if e["kind"] == "transition" and e["to"] == "backup"]
    assert on_mqtt[0]["detail"]["durations_s"] == backup["durations_s"]


async def test_twenty_percent_loss_on_the_primary_does_not_fail_over(lab: Lab) -> None:
    record = lab.dir / "rounds.jsonl"
    daemon = DaemonInLab(lab, overrides={"primary": {"record": str(record)}})
    await daemon.start()
    await daemon.wait_state("primary", STATE_TIMEOUT)
    await lab.set_loss(20)

    def rounds_recorded() -> int:
        return len(record.read_text().splitlines()) if record.exists() else 0

    # 90 probe rounds (0.5 s each) under that loss: the monitor had every chance to fail
    before = rounds_recorded()
    await wait_until(lambda: rounds_recorded() >= before + LOSS_ROUNDS, LOSS_ROUNDS * 0.5 + 30,
                     f"{LOSS_ROUNDS} probe rounds recorded under loss", detail=rounds_recorded)
    status = await daemon.status()
    await daemon.stop()
    assert status["state"] == "primary"
    assert ("primary", "failing_over") not in daemon.transitions()
    # the loss was real: some probes were lost, and the rounds went on
    rounds = [json.loads(line) for line in record.read_text().splitlines()]
    probes = [ok for r in rounds[-80:] for _, ok, _ in r["replies"]]
    lost = probes.count(False) / len(probes)
    assert 0.05 < lost < 0.6, lost


async def test_a_flapping_primary_moves_the_router_no_more_than_the_hold_down_allows(
        lab: Lab) -> None:
    # trial failback every 6 s after a 3 s hold-down that doubles per recent failback;
    # the primary is down 4 s, up 4 s, for about a minute
    daemon = DaemonInLab(lab, overrides={
        "failback": {"mode": "trial", "hold_down": 3, "hold_down_max": 120,
                     "flap_window": 600, "trial_interval": 6, "trial_check": 5}})
    await daemon.start()
    await daemon.wait_state("primary", STATE_TIMEOUT)
    started = time.monotonic()
    await lab.flap(times=7, down=4.0, up=4.0)
    elapsed = time.monotonic() - started
    await daemon.stop()
    transitions = daemon.transitions()
    failbacks = transitions.count(("backup", "failing_back"))
    failovers = transitions.count(("primary", "failing_over"))
    # hold-downs of 3 + 6 + 12 + 24 s fit in ~56 s of flapping: at most 4 trial failbacks
    # (without the doubling a trial every 6 s would give ~9)
    assert elapsed < 70
    assert 1 <= failovers <= failbacks + 1
    assert failbacks <= 4, transitions


async def test_a_router_that_reports_the_backup_wan_but_does_not_route_is_a_fault(
        lab: Lab) -> None:
    # the backup ISP's gateway neither answers nor forwards what comes from the router
    isp2 = lab.ns("isp2")
    await netns.nft_apply(isp2, """\
table inet dslf_blackhole {
    chain inbound {
        type filter hook input priority 0; policy accept;
        iifname "wan0" drop
    }
    chain forwarded {
        type filter hook forward priority 0; policy accept;
        iifname "wan0" drop
    }
}
""")
    daemon = DaemonInLab(lab, overrides={"router": {"live_proof_timeout": SHORT_PROOF}})
    await daemon.start()
    await daemon.wait_state("primary", STATE_TIMEOUT)
    await lab.cut()
    status = await daemon.wait_state("fault", STATE_TIMEOUT)
    assert status["reason"].startswith(
        f"failover failed: live proof: router reports the backup WAN ({BACKUP.wan}) but its "
        f"gateway {BACKUP.gateway.ip} did not answer ICMP from this host within "
        f"{SHORT_PROOF:g}s"), status["reason"]
    assert status["circuit"] == "backup"  # where the router is, though it does not route
    assert ("failing_over", "backup") not in daemon.transitions()
    assert await lab.read_wan() == BACKUP.wan
    # once the backup ISP routes again, the retry proves it and the failover completes
    await netns.run(netns.in_netns(isp2, ["nft", "delete", "table", "inet", "dslf_blackhole"]))
    await daemon.wait_state("backup", STATE_TIMEOUT)
    await daemon.stop()
    (fault,) = transition_events(daemon, "failing_over", "fault")
    assert isinstance(fault["durations_s"], dict)
    assert fault["durations_s"]["live_proof"] >= SHORT_PROOF
