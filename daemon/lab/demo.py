"""`dslfailover demo`: the whole job on a simulated site, as a timeline.

Brings the lab up (network namespaces: our LAN host, the router with the Netopia
emulator, two DSL circuits, an internet, the customer's network with its Postfix backup
MX behind the tunnel), starts the daemon and an MQTT subscriber, sends mail to the
backup MX, cuts the primary circuit, shows what happens (probe alarms, transitions, the
router dialogue, the MX verification, the flush, mail arriving), restores the primary,
fails back, and tears everything down. Nothing leaves the lab's namespaces.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..control import ControlError
from .netns import LabError
from .poll import until
from .runner import DaemonInLab, epoch
from .site import Lab, new_lab_id

# Bounds each phase of the demo; generous, the numbers it prints are what matter.
PHASE_TIMEOUT = 60.0
# The demo's router restarts to apply a change, like a real Netopia, but is away only
# this long (a real one takes tens of seconds: the lab's default is 20 s).
DEMO_ROUTER_RESTART = 3.0
OUTAGE_MAILS = 3


@dataclass
class Timeline:
    """Entries stamped with when things happened (their own time where they carry one)."""

    out: TextIO
    as_json: bool
    t0: float = field(default_factory=time.time)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, source: str, text: str, *, at: float | None = None, **data: Any) -> None:
        when = time.time() if at is None else at
        entry = {"t": round(when - self.t0, 3), "source": source, "text": text, **data}
        self.entries.append(entry)
        if self.as_json:
            self.out.write(json.dumps(entry, default=str) + "\n")
        else:
            self.out.write(f"{entry['t']:8.2f}s  {source:<7} {text}\n")
        self.out.flush()


class Watcher:
    """Turns what the daemon, the broker and our mail server say into timeline entries."""

    def __init__(self, lab: Lab, daemon: DaemonInLab, timeline: Timeline,
                 mqtt_log: str) -> None:
        self.lab = lab
        self.daemon = daemon
        self.tl = timeline
        self.mqtt_log = mqtt_log
        self._mqtt_offset = 0
        self._mails = 0
        self.sent: dict[str, float] = {}
        self.delivered: dict[str, float] = {}
        self.states: list[str] = []

    def poll(self) -> None:
        for line in self.daemon.read():
            if "event_kind" in line:
                self._audit(line)
        self._mqtt()
        for msg in self.lab.sink_messages()[self._mails:]:
            self._mails += 1
            subject = str(msg.get("subject"))
            self.delivered[subject] = float(msg.get("at", time.time()))
            waited = ""
            if subject in self.sent:
                waited = f" ({self.delivered[subject] - self.sent[subject]:.1f}s after sending)"
            self.tl.add("mail", f"delivered to our mail server: {subject!r}{waited}",
                        at=self.delivered[subject])

    def _audit(self, e: dict[str, Any]) -> None:
        kind, text = e.get("event_kind"), str(e.get("event", ""))
        at = epoch(e.get("timestamp"))
        seq = e.get("seq")
        if kind == "transition":
            self.tl.add("daemon", f"state {e.get('state_from')} -> {e.get('state_to')}: {text}",
                        at=at, seq=seq)
            durations = e.get("durations_s")
            if isinstance(durations, dict) and durations:
                self.tl.add("daemon", "the move took: " + ", ".join(
                    f"{k.replace('_', ' ')} {_seconds(v)}" for k, v in durations.items()
                    if isinstance(v, int | float)), at=at)
        elif kind in ("probe_alarm", "command"):
            self.tl.add("daemon", f"{'alarm' if kind == 'probe_alarm' else 'command'}: {text}",
                        at=at, seq=seq)
        elif kind == "action":
            self.tl.add("daemon", text, at=at, seq=seq)
            transcript = e.get("transcript")
            if isinstance(transcript, str) and text.startswith("router apply"):
                sent = [ln[2:] for ln in transcript.splitlines() if ln.startswith("> ")]
                self.tl.add("router", "sent (masked): " + " | ".join(s for s in sent if s),
                            at=at)

    def _mqtt(self) -> None:
        try:
            with open(self.mqtt_log, "rb") as fh:
                fh.seek(self._mqtt_offset)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._mqtt_offset += end
        for raw in data[:end].decode(errors="replace").splitlines():
            topic, _, payload = raw.partition(" ")
            if topic.endswith("/state"):
                try:
                    s = json.loads(payload)
                except ValueError:
                    continue
                self.states.append(str(s.get("state")))
                self.tl.add("mqtt", f"{topic}: state={s.get('state')} circuit="
                            f"{s.get('circuit')} primary_link={s.get('primary_link')} "
                            f"mail_path={s.get('mail_path')}")
            elif topic.endswith("/availability"):
                self.tl.add("mqtt", f"{topic}: {payload}")

    async def follow(self) -> None:
        """Poll all sources all the time, so each entry is printed as it happens."""
        while True:
            self.poll()
            await asyncio.sleep(0.05)


def _seconds(value: float) -> str:
    return f"{value:.2f}s" if value >= 0.01 else f"{value * 1000:.0f}ms"


async def run_demo(out: TextIO, *, as_json: bool = False, console: str = "menu") -> int:
    tl = Timeline(out, as_json)
    lab = Lab(new_lab_id(), console=console, router_restart=DEMO_ROUTER_RESTART)
    tl.add("lab", "bringing the lab up: namespaces, veth links, NAT, tunnel, router "
                  f"emulator (netopia-{console}), sshd + Postfix backup MX, mail server, "
                  "mosquitto ...")
    tl.add("lab", f"the router restarts to apply a saved change and is away "
                  f"{DEMO_ROUTER_RESTART:g}s (shortened for the demo; a real router takes "
                  "tens of seconds, the lab's default is 20s)")
    ok = False
    follower: asyncio.Task[None] | None = None
    try:
        await lab.up()
        tl.add("lab", f"up: {len(lab.topo.namespaces)} namespaces ({lab.topo.prefix}*); "
                      f"daemon config {lab.config_path}")
        mqtt_sub = await lab.spawn("inside", [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-v", "-q", "1",
            "-t", f"dslfailover/lab-{lab.lab_id}/#"], name="mqtt-sub")
        daemon = DaemonInLab(lab)
        watch = Watcher(lab, daemon, tl, mqtt_sub.log)
        follower = asyncio.create_task(watch.follow(), name="demo-follow")
        await daemon.start()
        tl.add("lab", "daemon started in the inside namespace (dslfailover run)")
        await daemon.wait_state("primary", PHASE_TIMEOUT)
        await until(lambda: "primary" in watch.states, 10, "primary on MQTT")

        for i in range(2):
            subject = f"before the outage #{i + 1}"
            watch.sent[subject] = time.time()
            await lab.send_to_backup_mx(subject)
            tl.add("remote", f"sent {subject!r} to the backup MX")
        await until(lambda: len(watch.delivered) >= 2, PHASE_TIMEOUT,
                          "mail through the tunnel on the primary")

        cut_at = time.monotonic()
        await lab.cut()
        tl.add("lab", "CUT: the primary DSL circuit is dead (isp1 link down)")
        outage = [f"during the outage #{i + 1}" for i in range(OUTAGE_MAILS)]
        for subject in outage:
            watch.sent[subject] = time.time()
            await lab.send_to_backup_mx(subject)
            tl.add("remote", f"sent {subject!r} to the backup MX (the tunnel is down: "
                             "it queues there)")
        await until(lambda: any(e.get("state_to") == "failing_over"
                                      for e in daemon.events), PHASE_TIMEOUT, "detection")
        detected = time.monotonic() - cut_at
        await daemon.wait_state("backup", PHASE_TIMEOUT)
        on_backup = time.monotonic() - cut_at
        await until(lambda: all(s in watch.delivered for s in outage), PHASE_TIMEOUT,
                          "outage mail delivered after the flush")
        tl.add("lab", f"primary declared dead {detected:.2f}s after the cut; `backup` "
                      f"(router restarted onto the backup, circuit proved live, MX "
                      f"verified) after {on_backup:.2f}s")

        await lab.restore()
        tl.add("lab", "RESTORE: the primary circuit is back")
        await asyncio.sleep(2.0)
        answer = await daemon.command("failback", "demo: the primary is back")
        tl.add("operator", f"dslfailover failback -> {answer.get('detail') or answer}")
        await daemon.wait_state("primary", PHASE_TIMEOUT)
        await until(lambda: watch.states[-1:] == ["primary"], 10, "primary on MQTT")
        subject = "after the failback"
        watch.sent[subject] = time.time()
        await lab.send_to_backup_mx(subject)
        await until(lambda: subject in watch.delivered, PHASE_TIMEOUT,
                          "mail after the failback")
        await daemon.stop()
        await asyncio.sleep(0.5)
        follower.cancel()
        watch.poll()
        summary: dict[str, Any] = {
            "detected_s": round(detected, 2), "cut_to_backup_s": round(on_backup, 2),
            "mails_sent": len(watch.sent), "mails_delivered": len(watch.delivered),
            "transitions": [f"{a}->{b}" for a, b in daemon.transitions()]}
        tl.add("summary", f"detected in {detected:.2f}s, on backup in {on_backup:.2f}s, "
                          f"{len(watch.delivered)}/{len(watch.sent)} mails delivered",
               **summary)
        ok = len(watch.delivered) == len(watch.sent)
    except (TimeoutError, OSError, LabError, ControlError) as exc:
        tl.add("error", f"{type(exc).__name__}: {exc}")
    finally:
        if follower is not None:
            follower.cancel()
        removed = await asyncio.shield(lab.down())
        tl.add("lab", f"torn down ({len(removed)} things removed)")
    return 0 if ok else 1


def main(as_json: bool, console: str) -> int:
    import os

    if os.geteuid() != 0:
        print("dslfailover demo: needs root (it creates network namespaces)", file=sys.stderr)
        return 77
    return asyncio.run(run_demo(sys.stdout, as_json=as_json, console=console))
