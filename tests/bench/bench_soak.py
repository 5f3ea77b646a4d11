"""Benchmark: M minutes at P % random ICMP loss on the primary path, then a few real cuts;
the daemon's own false failovers, and the recorded probe stream replayed through three
decision rules (tests/bench/replay.py): our monitor, mwan3's and dpinger/pfSense's.

Phases, one lab:
1. soak: the daemon (lab defaults, `[primary] record` on) at P % loss for M minutes.
   Target (DESIGN §10): 0 `primary -> failing_over` transitions. The same stream through
   each rule gives its false alarms.
2. agreement cut: one real cut at 0 % loss with that daemon, failback. Our monitor
   replayed over the whole stream must declare down exactly when the daemon did.
3. detection cuts: the daemon restarted as a pure recorder (down_after = 1000, so it
   never leaves the primary and keeps probing it through the cut: mwan3 and dpinger
   need far longer than our 2-3 s to decide); N cuts of H seconds, R seconds apart;
   each rule's detection time on that stream.

Run as root: .venv/bin/python tests/bench/bench_soak.py [--minutes 10] [--loss 20]
One JSON object on stdout, progress on stderr; exit 0 when the daemon made no false
failover during the soak and the replay of our monitor agrees with the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon.lab.runner import DaemonInLab
from daemon.lab.site import Lab
from tests.bench import replay
from tests.bench.benchlib import (
    RUN_ERRORS,
    SETTLE_TIMEOUT,
    STEP_ERRORS,
    emit,
    lab_with_daemon,
    last_seq,
    need_root,
    progress,
    settled,
    stats,
    transitions_since,
)
from tests.bench.replay import Change, Round

# What ends the soak as a failed result: the bench's errors, and a record it cannot read.
SOAK_ERRORS: tuple[type[Exception], ...] = (*RUN_ERRORS, replay.RecordError)
# The lab config's (= the daemon's default) monitor settings, replayed as "ours".
OURS = {"quorum": 1, "down_after": 4, "up_after": 20, "window": 20}
# Bounds cut -> `backup` and restore -> failback -> settled in the agreement cut.
PHASE_TIMEOUT = 60.0
# Our replayed down verdict and the daemon's transition stamp differ by the time the
# verdict takes through the daemon's event queue: well under this.
AGREE_WITHIN = 0.5
RECORDER_DOWN_AFTER = 1000
RULES: dict[str, Callable[[Sequence[Round]], list[Change]]] = {
    "ours": lambda rounds: replay.ours(rounds, **OURS),
    "mwan3": replay.mwan3,
    "dpinger": replay.dpinger,
}
RULE_TEXT = {
    "ours": "daemon.monitor.Monitor with the lab config: 0.5 s rounds to 4 targets, a round "
            "is good when >= 1 answered (quorum 1), down after 4 failed rounds in a row, "
            "up after 20 good",
    "mwan3": f"mwan3 defaults (as given in the brief): every {replay.MWAN3_EVERY}th round "
             "(10 s interval) is one sample, good when >= 1 target answered (reliability "
             f"1), down after {replay.MWAN3_DOWN} failed samples in a row, up after "
             f"{replay.MWAN3_UP} good; a failed sample is decided {replay.MWAN3_LATE_FAIL:g} s "
             "later than recorded (its 4 s timeout vs our 0.8 s)",
    "dpinger": "dpinger/pfSense defaults: every 0.5 s round's probe to the gateway (first "
               "target) only; loss over a 60 s sliding window; alarm when loss >= 20 % has "
               "held 10 s without a break (our reading of pfSense's hold), cleared as soon "
               f"as loss < 20 %; a lost probe counts {replay.DPINGER_LATE_FAIL:g} s later "
               "than recorded (its 2 s loss interval vs our 0.8 s)",
}


def read_record(path: Path) -> list[Round]:
    if not path.exists():
        return []
    return replay.parse_record(path.read_text(encoding="utf-8").splitlines(), str(path))


def target_loss(rounds: Sequence[Round]) -> dict[str, float]:
    if not rounds:
        return {}
    names = [t for t, _, _ in rounds[0].replies]
    return {n: round(sum(1 for r in rounds if not r.replies[i][1]) / len(rounds), 3)
            for i, n in enumerate(names)}


async def failback(lab: Lab, daemon: DaemonInLab) -> None:
    await lab.restore()
    answer = await daemon.command("failback", "bench: the primary is back")
    if not answer.get("ok") or answer.get("accepted") is False:
        raise RuntimeError(f"failback refused: {answer}")
    await daemon.wait_state("primary", PHASE_TIMEOUT)
    await settled(daemon, PHASE_TIMEOUT)


async def soak(lab: Lab, daemon: DaemonInLab, minutes: float, loss: int,
               record: Path) -> dict[str, Any]:
    seq = last_seq(daemon)
    start = time.time()
    await lab.set_loss(loss)
    progress(f"soak: {loss} % loss for {minutes:g} min")
    end_at = start + minutes * 60
    while (left := end_at - time.time()) > 0:
        await asyncio.sleep(min(60.0, left))
        n = len(transitions_since(daemon, seq, "primary", "failing_over"))
        progress(f"soak: {(time.time() - start) / 60:.1f} min, "
                 f"{len(read_record(record))} rounds recorded, {n} false failovers so far")
    end = time.time()
    await lab.set_loss(0)
    false = [t for t in transitions_since(daemon, seq, "primary", "failing_over")
             if start <= t < end]
    # each rule runs over the whole stream so far (its windows hold the clean rounds
    # before the loss began, as a running tool's would); alarms count inside the soak
    history = replay.between(read_record(record), 0.0, end)
    rounds = replay.between(history, start, end)
    alarms = {name: replay.downs_between(rule(history), start, end)
              for name, rule in RULES.items()}
    status = await daemon.status()
    if status.get("state") != "primary":
        progress(f"soak over in state {status.get('state')}: failing back")
        await failback(lab, daemon)
    else:
        await settled(daemon, PHASE_TIMEOUT)
    return {
        "start": start, "end": end, "rounds": len(rounds),
        "failed_rounds": sum(1 for r in rounds if r.answered() == 0),
        "loss_by_target": target_loss(rounds),
        "daemon_false_failovers": len(false),
        "daemon_false_failover_at_s": [round(t - start, 1) for t in false],
        "false_alarms": {k: len(v) for k, v in alarms.items()},
        "false_alarm_at_s": {k: [round(t - start, 1) for t in v] for k, v in alarms.items()},
    }


async def agreement_cut(lab: Lab, daemon: DaemonInLab) -> dict[str, Any]:
    seq = last_seq(daemon)
    cut = time.time()
    await lab.cut()
    await daemon.wait_state("backup", PHASE_TIMEOUT)
    detected = transitions_since(daemon, seq, "primary", "failing_over")
    await failback(lab, daemon)
    progress(f"agreement cut: daemon detected after "
             f"{detected[0] - cut if detected else float('nan'):.2f}s")
    return {"cut": cut, "daemon_detection_s": round(detected[0] - cut, 3) if detected
            else None}


def agreement(daemon: DaemonInLab, rounds: Sequence[Round]) -> dict[str, Any]:
    """Every `primary -> failing_over` of the daemon against every down verdict of our
    monitor replayed over the daemon's whole stream."""
    theirs = transitions_since(daemon, 0, "primary", "failing_over")
    mine = [c.t for c in RULES["ours"](rounds) if c.down]
    pairs = list(zip(theirs, mine, strict=False))
    agree = len(theirs) == len(mine) and all(abs(a - b) <= AGREE_WITHIN for a, b in pairs)
    return {"daemon_failing_over": len(theirs), "replay_down": len(mine),
            "stamp_differences_s": [round(a - b, 3) for a, b in pairs],
            "within_s": AGREE_WITHIN, "agree": agree}


async def detection_cuts(lab: Lab, cuts: int, hold: float, recover: float,
                         record: Path) -> dict[str, Any]:
    recorder = DaemonInLab(lab, name="recorder", overrides={"primary": {
        "record": str(record), "down_after": RECORDER_DOWN_AFTER}})
    times: list[tuple[float, float]] = []
    try:
        await recorder.start()
        await settled(recorder, SETTLE_TIMEOUT)
        progress(f"recorder up; {recover:g}s of clean rounds before the first cut")
        await asyncio.sleep(recover)
        for i in range(1, cuts + 1):
            cut = time.time()
            await lab.cut()
            await asyncio.sleep(hold)
            await lab.restore()
            times.append((cut, time.time()))
            progress(f"detection cut {i}/{cuts}: {hold:g}s cut, now {recover:g}s restored")
            await asyncio.sleep(recover)
        recorder.read()
        moved = [f"{a}->{b}" for a, b in recorder.transitions()]
    finally:
        await recorder.stop()
    rounds = read_record(record)
    changes = {name: rule(rounds) for name, rule in RULES.items()}
    rows: list[dict[str, Any]] = []
    for i, (cut, restored) in enumerate(times, 1):
        rows.append({"cut": i, "hold_s": round(restored - cut, 1), "detection_s": {
            name: ("already down at the cut" if replay.down_at(ch, cut)
                   else replay.detection(ch, cut, restored))
            for name, ch in changes.items()}})
    det = {name: stats([v for r in rows if isinstance(v := r["detection_s"][name], float)])
           for name in RULES}
    missed = {name: sum(1 for r in rows if r["detection_s"][name] is None) for name in RULES}
    return {"rounds": len(rounds), "recorder_transitions": moved, "per_cut": rows,
            "detection_s": det, "not_detected_within_the_cut": missed}


async def run(args: argparse.Namespace, records: Path) -> tuple[dict[str, Any], bool]:
    result: dict[str, Any] = {"bench": "soak", "minutes": args.minutes, "loss_pct": args.loss,
                              "rules": RULE_TEXT}
    errors: list[str] = []
    record = records / "soak-rounds.jsonl"
    async with lab_with_daemon(overrides={"primary": {"record": str(record)}}) as (lab, daemon):
        result["lab"] = lab.lab_id
        try:
            result["soak"] = await soak(lab, daemon, args.minutes, args.loss, record)
            result["agreement_cut"] = await agreement_cut(lab, daemon)
        except STEP_ERRORS as exc:
            errors.append(f"soak: {type(exc).__name__}: {exc}")
        result["daemon_transitions"] = [f"{a}->{b}" for a, b in daemon.transitions()]
        result["agreement"] = agreement(daemon, read_record(record))
        await daemon.stop()  # the recorder takes over the control socket and the router
        try:
            result["cuts"] = await detection_cuts(lab, args.cuts, args.cut_hold,
                                                  args.recover, records / "cut-rounds.jsonl")
        except STEP_ERRORS as exc:
            errors.append(f"detection cuts: {type(exc).__name__}: {exc}")
    false = result.get("soak", {}).get("daemon_false_failovers")
    agree = result["agreement"]["agree"]
    result["targets"] = {
        "false_failovers": {"target": 0, "value": false, "pass": false == 0},
        "replay_of_our_monitor_agrees_with_daemon": {"target": True, "value": agree,
                                                     "pass": agree}}
    ok = all(t["pass"] for t in result["targets"].values()) and not errors
    result["pass"] = ok
    result["errors"] = errors
    return result, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--loss", type=int, default=20, choices=range(0, 101),
                        metavar="PCT")
    parser.add_argument("--cuts", type=int, default=3, help="detection cuts (default 3)")
    parser.add_argument("--cut-hold", type=float, default=60.0,
                        help="seconds each detection cut lasts (mwan3 needs up to ~53 s)")
    parser.add_argument("--recover", type=float, default=60.0,
                        help="clean seconds before and between detection cuts (dpinger's "
                             "60 s window must clear)")
    parser.add_argument("--keep", type=Path, help="copy the recorded streams here")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    need_root("bench_soak")
    records = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    try:
        result, ok = asyncio.run(run(args, records))
    except SOAK_ERRORS as exc:
        emit({"bench": "soak", "pass": False, "errors": [f"{type(exc).__name__}: {exc}"]})
        return 1
    finally:
        if args.keep:
            shutil.copytree(records, args.keep, dirs_exist_ok=True)
        shutil.rmtree(records, ignore_errors=True)
    emit(result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
