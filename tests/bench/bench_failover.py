"""Benchmark: N cuts of the primary circuit per console, against the lab's router that
restarts to apply a change (DESIGN §10).

For each cut: detection = wall time of the cut -> the daemon's own timestamp of its
`primary -> failing_over` transition; cut -> `failing_over -> backup` (router moved and
restarted, the new circuit proved live, backup MX verified: when `backup` is published);
the parts of the move from the `backup` transition's evidence (`durations_s`: detect,
dialogue, restart_wait, read_back, live_proof, mx_checks) and the flush's own duration;
**our own overhead** = cut -> `backup` - detection - the emulator's restart time. 2 mails
are sent to the backup MX right after the cut: sink arrival - `backup`. Then restore,
`failback` by command (its parts and overhead too), and wait for `primary` with the
primary link `up` before the next cut.

With `--dead-broker` the daemon's MQTT broker is a port where nothing listens, for the
whole run: a dead broker must never delay a failover, so the same targets hold.

Run as root: .venv/bin/python tests/bench/bench_failover.py [--cuts 10]
    [--console cli|menu|both] [--router-restart 20] [--dead-broker]
One JSON object on stdout, progress on stderr; exit 0 when every §10 target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from pathlib import Path
from typing import Any

from daemon.lab.netns import LabError
from daemon.lab.runner import DaemonInLab
from daemon.lab.site import DEFAULT_ROUTER_RESTART, Lab
from tests.bench.benchlib import (
    RUN_ERRORS,
    STEP_ERRORS,
    emit,
    epoch,
    lab_with_daemon,
    last_seq,
    need_root,
    progress,
    settled,
    stats,
    until,
)

# Bounds cut -> `backup` beyond the router's restart (past this the cut counts as failed).
BACKUP_TIMEOUT = 40.0
# A mail not at our sink this long after `backup` counts as bounced (the brief's rule).
DELIVERY_DEADLINE = 30.0
# Bounds waiting for the first flush after `backup` to be audited.
FLUSH_TIMEOUT = 20.0
# Bounds restore -> failback -> `primary` with the link up (up_after 20 rounds = 10 s),
# beyond the router's restart.
RECOVER_TIMEOUT = 60.0
MAILS_PER_CUT = 2
# With --dead-broker: nothing listens on this port in the lab's inside namespace (the
# lab's broker is on 1883), so every MQTT connect of the daemon is refused.
DEAD_BROKER_PORT = 1884
TARGET_DETECTION_P95 = 3.0
TARGET_OVERHEAD_P95 = 1.5
TARGET_DELIVERY = 10.0
# The steps of a move, in order, as the daemon reports them in the transition's evidence.
MOVE_STEPS = ("dialogue", "restart_wait", "read_back", "live_proof", "mx_checks")


def transition_after(daemon: DaemonInLab, seq: int, src: str, dst: str
                     ) -> dict[str, Any] | None:
    """The first audited `src -> dst` transition after `seq` (its log line)."""
    daemon.read()
    return next((e for e in daemon.events
                 if e.get("event_kind") == "transition" and int(e.get("seq") or 0) > seq
                 and (e.get("state_from"), e.get("state_to")) == (src, dst)), None)


def action_after(daemon: DaemonInLab, seq: int, prefix: str) -> dict[str, Any] | None:
    """The first audited action after `seq` whose text starts with `prefix`."""
    daemon.read()
    return next((e for e in daemon.events
                 if e.get("event_kind") == "action" and int(e.get("seq") or 0) > seq
                 and str(e.get("event", "")).startswith(prefix)), None)


def stamp(event: dict[str, Any]) -> float:
    at = epoch(event.get("timestamp"))
    if at is None:
        raise RuntimeError(f"audit event without a timestamp: {event.get('event')!r}")
    return at


def parts_of(event: dict[str, Any]) -> dict[str, float | None]:
    durations = event.get("durations_s")
    if not isinstance(durations, dict):
        return {}
    return {k: (float(v) if isinstance(v, int | float) else None)
            for k, v in durations.items()}


def r3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def one_cut(lab: Lab, daemon: DaemonInLab, i: int) -> dict[str, Any]:
    seq = last_seq(daemon)
    subjects = [f"bench failover cut {i} mail {k}" for k in range(1, MAILS_PER_CUT + 1)]
    cut_at = time.time()
    await lab.cut()
    cut_call = time.time() - cut_at
    sent: dict[str, float] = {}
    errors: list[str] = []
    for subject in subjects:
        try:
            await lab.send_to_backup_mx(subject)
            sent[subject] = time.time()
        except LabError as exc:
            errors.append(f"send {subject!r}: {exc}")
    await daemon.wait_state("backup", BACKUP_TIMEOUT + lab.router_restart)
    failing_over = transition_after(daemon, seq, "primary", "failing_over")
    backup = transition_after(daemon, seq, "failing_over", "backup")
    if failing_over is None or backup is None:
        raise RuntimeError(f"cut {i}: state backup but transitions not audited "
                           f"(primary->failing_over {failing_over is not None}, "
                           f"failing_over->backup {backup is not None})")
    detected_at, backup_at = stamp(failing_over), stamp(backup)
    parts = parts_of(backup)

    def arrivals() -> dict[str, float]:
        return {str(m.get("subject")): float(m["at"]) for m in lab.sink_messages()
                if m.get("subject") in sent and "at" in m}

    with contextlib.suppress(TimeoutError):  # what did not arrive is counted below
        await until(lambda: len(arrivals()) == len(sent),
                    max(0.0, backup_at + DELIVERY_DEADLINE - time.time()), "mail")
    got = arrivals()
    backup_seq = int(backup.get("seq") or 0)
    with contextlib.suppress(TimeoutError):
        await until(lambda: action_after(daemon, backup_seq, "backup MX queue flushed")
                    is not None, FLUSH_TIMEOUT, "flush")
    flush = action_after(daemon, backup_seq, "backup MX queue flushed")
    detection = detected_at - cut_at
    to_backup = backup_at - cut_at
    accounted = sum(v for k in MOVE_STEPS if (v := parts.get(k)) is not None)
    return {
        "cut": i, "cut_call_s": round(cut_call, 3),
        "detection_s": round(detection, 3),
        "cut_to_backup_s": round(to_backup, 3),
        "overhead_s": round(to_backup - detection - lab.router_restart, 3),
        "parts_s": {
            "detect": r3(parts.get("detect")),
            **{k: r3(parts.get(k)) for k in MOVE_STEPS},
            "flush": r3(float(flush["seconds"])) if flush and "seconds" in flush else None,
            # failing_over -> backup not inside any step: scheduling, the executor, audit
            "between_steps": round(backup_at - detected_at - accounted, 3),
        },
        "mail_delay_after_backup_s": [round(got[s] - backup_at, 3) for s in subjects
                                      if s in got],
        "mails_sent": len(sent), "mails_delivered": len(got),
        "mails_not_delivered": sorted(set(sent) - set(got)), "errors": errors,
    }


async def recover(lab: Lab, daemon: DaemonInLab) -> dict[str, Any]:
    """Primary restored, failed back by command, settled with the link up; the failback's
    parts and overhead (`failing_back` -> `primary` - the restart)."""
    seq = last_seq(daemon)
    await lab.restore()
    answer = await daemon.command("failback", "bench: the primary is back")
    if not answer.get("ok") or answer.get("accepted") is False:
        raise RuntimeError(f"failback refused: {answer}")
    await daemon.wait_state("primary", RECOVER_TIMEOUT + lab.router_restart)
    leaving = transition_after(daemon, seq, "backup", "failing_back")
    back = transition_after(daemon, seq, "failing_back", "primary")
    await settled(daemon, RECOVER_TIMEOUT)
    if leaving is None or back is None:
        return {}
    took = stamp(back) - stamp(leaving)
    parts = parts_of(back)
    return {"failing_back_to_primary_s": round(took, 3),
            "overhead_s": round(took - lab.router_restart, 3),
            "parts_s": {k: r3(parts.get(k)) for k in MOVE_STEPS if k in parts}}


def maillog_bounces(lab: Lab) -> int | None:
    """`status=bounced` lines in the backup MX Postfix's own maillog (None if unreadable)."""
    path = lab.services().get("postfix", {}).get("maillog")
    if not path:
        return None
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    return len(re.findall(r"status=bounced", text))


def part_stats(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    return {k: stats([v for r in rows if (v := r["parts_s"].get(k)) is not None])
            for k in names}


async def run(cuts: int, console: str, router_restart: float, dead_broker: bool
              ) -> tuple[dict[str, Any], bool]:
    per_cut: list[dict[str, Any]] = []
    errors: list[str] = []
    bounced_log: int | None = None
    lab_id = None
    overrides = {"mqtt": {"port": DEAD_BROKER_PORT}} if dead_broker else None
    async with lab_with_daemon(console, overrides, router_restart) as (lab, daemon):
        lab_id = lab.lab_id
        for i in range(1, cuts + 1):
            row: dict[str, Any] | None = None
            try:
                row = await one_cut(lab, daemon, i)
                per_cut.append(row)
                progress(f"{console} cut {i}/{cuts}: detected {row['detection_s']:.2f}s, "
                         f"backup {row['cut_to_backup_s']:.2f}s, overhead "
                         f"{row['overhead_s']:.2f}s, parts {row['parts_s']}, mail "
                         f"{row['mail_delay_after_backup_s']} after backup")
            except STEP_ERRORS as exc:
                errors.append(f"cut {i}: {type(exc).__name__}: {exc}")
                progress(errors[-1])
            try:
                failback = await recover(lab, daemon)
                if row is not None:
                    row["failback"] = failback
                progress(f"{console} failback {i}: {failback}")
            except STEP_ERRORS as exc:
                errors.append(f"recovery after cut {i}: {type(exc).__name__}: {exc}")
                progress(errors[-1] + " (stopping)")
                break
        bounced_log = maillog_bounces(lab)
    detection = [r["detection_s"] for r in per_cut]
    overhead = [r["overhead_s"] for r in per_cut]
    delays = [d for r in per_cut for d in r["mail_delay_after_backup_s"]]
    sent = sum(r["mails_sent"] for r in per_cut)
    delivered = len(delays)
    within = sum(1 for d in delays if d <= TARGET_DELIVERY)
    bounced = sent - delivered
    det, over, mail = stats(detection), stats(overhead), stats(delays)
    failbacks = [r["failback"] for r in per_cut if r.get("failback")]
    targets = {
        "detection_p95_s": {"target": f"<= {TARGET_DETECTION_P95}", "value": det["p95"],
                            "pass": det["p95"] is not None
                            and det["p95"] <= TARGET_DETECTION_P95},
        "overhead_p95_s": {"target": f"<= {TARGET_OVERHEAD_P95}", "value": over["p95"],
                           "pass": over["p95"] is not None
                           and over["p95"] <= TARGET_OVERHEAD_P95},
        "mail_delivered_within_10s_of_backup": {
            "target": "100 %", "value": f"{within}/{sent}",
            "pass": sent > 0 and within == sent},
        "mail_bounced": {"target": 0, "value": bounced,
                         "maillog_status_bounced": bounced_log,
                         "pass": bounced == 0 and not bounced_log},
    }
    ok = all(t["pass"] for t in targets.values()) and not errors and len(per_cut) == cuts
    result = {
        "bench": "failover", "lab": lab_id, "console": console,
        "router_restart_s": router_restart, "mqtt": "dead" if dead_broker else "up",
        "cuts_requested": cuts, "cuts_completed": len(per_cut),
        "detection_s": det, "cut_to_backup_s": stats([r["cut_to_backup_s"] for r in per_cut]),
        "overhead_s": over,
        "parts_s": part_stats(per_cut, ["detect", *MOVE_STEPS, "flush", "between_steps"]),
        "failback": {
            "failing_back_to_primary_s": stats([f["failing_back_to_primary_s"]
                                                for f in failbacks]),
            "overhead_s": stats([f["overhead_s"] for f in failbacks]),
            "parts_s": part_stats(failbacks, list(MOVE_STEPS[:4])),
        },
        "mail_delay_after_backup_s": mail,
        "mails": {"sent": sent, "delivered": delivered, "delivered_within_10s": within,
                  "bounced_not_delivered_within_30s": bounced,
                  "maillog_status_bounced": bounced_log},
        "targets": targets, "pass": ok, "errors": errors,
        "method": ("cut time = wall clock just before `ip link set wan0 down` in isp1 "
                   "(conservative); transition times = the daemon's own audit timestamps; "
                   "parts = the `durations_s` evidence of the `backup`/`primary` "
                   "transition (the driver's timings, the live proof, the MX verify) and "
                   "the flush action's own seconds; overhead = cut -> backup - detection "
                   "- the emulator's restart time; mail times = the sink's arrival "
                   "stamps; percentiles nearest-rank"),
        "per_cut": per_cut,
    }
    return result, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=10, help="cuts per console (default 10)")
    parser.add_argument("--console", choices=["cli", "menu", "both"], default="both")
    parser.add_argument("--router-restart", type=float, default=DEFAULT_ROUTER_RESTART,
                        metavar="S", help="seconds the lab's router is away when it "
                        f"restarts to apply (default {DEFAULT_ROUTER_RESTART:g})")
    parser.add_argument("--dead-broker", action="store_true",
                        help="point the daemon's MQTT at a port where nothing listens")
    args = parser.parse_args()
    if args.cuts < 1:
        parser.error("--cuts must be at least 1")
    need_root("bench_failover")
    consoles = ["cli", "menu"] if args.console == "both" else [args.console]
    results: dict[str, Any] = {}
    ok = True
    for console in consoles:
        try:
            results[console], passed = asyncio.run(run(args.cuts, console,
                                                       args.router_restart,
                                                       args.dead_broker))
        except RUN_ERRORS as exc:
            results[console] = {"bench": "failover", "console": console, "pass": False,
                                "errors": [f"{type(exc).__name__}: {exc}"]}
            passed = False
        ok = ok and passed
    if len(consoles) == 1:
        emit(results[consoles[0]])
    else:
        emit({"bench": "failover", "pass": ok, "consoles": results})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
