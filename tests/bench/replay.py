"""A recorded probe stream (`[primary] record`, one JSON line per round) replayed through
three decision rules: our own monitor, mwan3's defaults and dpinger/pfSense's defaults.

Pure functions: rounds in, state changes out, each stamped with the time the rule would
have decided. The soak bench uses them to count false alarms and detection times of
every rule on the very same stream the daemon saw.

Timing: a recorded round carries `t`, the wall time the daemon had its result (for a
failed probe: when our 0.8 s timeout expired). A tool with a longer timeout learns of a
failure later; `late_fail` adds that difference to failed samples (mwan3: 4 s - 0.8 s;
dpinger: its 2 s loss interval - 0.8 s).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daemon.model import LinkHealth
from daemon.monitor import Monitor
from daemon.probes.icmp import EchoResult

Reply = tuple[str, bool, float | None]

# mwan3 defaults as the brief gives them: one probe round every 10 s (= every 20th of our
# 0.5 s rounds), 4 s timeout, 5 failed / 5 good samples in a row, reliability 1.
MWAN3_EVERY = 20
MWAN3_DOWN = 5
MWAN3_UP = 5
MWAN3_RELIABILITY = 1
MWAN3_LATE_FAIL = 4.0 - 0.8
# dpinger as pfSense runs it: 0.5 s sends to the gateway only, loss over a 60 s window,
# alarm at >= 20 % loss, held 10 s; a probe counts as lost after the 2 s loss interval.
DPINGER_WINDOW = 60.0
DPINGER_ALARM_LOSS = 0.20
DPINGER_HOLD = 10.0
DPINGER_LATE_FAIL = 2.0 - 0.8


class RecordError(ValueError):
    """A line of a probe record that is not what the daemon writes."""


@dataclass(frozen=True, slots=True)
class Round:
    t: float
    circuit: str
    replies: tuple[Reply, ...]

    def answered(self) -> int:
        return sum(1 for _, ok, _ in self.replies if ok)


@dataclass(frozen=True, slots=True)
class Change:
    """A rule declared the primary down (`down`) or up again, at time `t`."""

    t: float
    down: bool


def parse_round(line: str, where: str) -> Round:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise RecordError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{where}: not a JSON object")
    t, circuit, replies = data.get("t"), data.get("circuit"), data.get("replies")
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise RecordError(f"{where}: 't' must be epoch seconds, got {t!r}")
    if not isinstance(circuit, str):
        raise RecordError(f"{where}: 'circuit' must be a string, got {circuit!r}")
    if not isinstance(replies, list) or not replies:
        raise RecordError(f"{where}: 'replies' must be a non-empty list")
    out: list[Reply] = []
    for i, r in enumerate(replies):
        if (not isinstance(r, list) or len(r) != 3 or not isinstance(r[0], str)
                or not isinstance(r[1], bool)
                or not (r[2] is None or isinstance(r[2], int | float))):
            raise RecordError(f"{where}: replies[{i}] must be [target, ok, rtt_ms|null], "
                              f"got {r!r}")
        out.append((r[0], r[1], None if r[2] is None else float(r[2])))
    return Round(float(t), circuit, tuple(out))


def parse_record(lines: Iterable[str], source: str = "record") -> list[Round]:
    """Every round of a record, in order; blank lines skipped, anything else is an error
    naming `source:line`."""
    return [parse_round(line, f"{source}:{n}") for n, line in enumerate(lines, 1)
            if line.strip()]


def between(rounds: Sequence[Round], t0: float, t1: float) -> list[Round]:
    return [r for r in rounds if t0 <= r.t < t1]


def segments(rounds: Sequence[Round], max_gap: float) -> list[list[Round]]:
    """Split where the daemon stopped probing the primary (on backup with manual
    failback) for more than `max_gap` seconds: each rule starts afresh after a gap, as
    the daemon's own monitor is reset when the router comes back to the primary."""
    out: list[list[Round]] = []
    for r in rounds:
        if not out or r.t - out[-1][-1].t > max_gap:
            out.append([])
        out[-1].append(r)
    return out


def ours(rounds: Sequence[Round], *, quorum: int, down_after: int, up_after: int,
         window: int, max_gap: float = 3.0) -> list[Change]:
    """daemon.monitor.Monitor itself, fed the recorded replies."""
    changes: list[Change] = []
    for seg in segments(rounds, max_gap):
        mon = Monitor([target for target, _, _ in seg[0].replies], quorum=quorum,
                      down_after=down_after, up_after=up_after, window=window)
        for r in seg:
            obs = mon.observe(tuple(EchoResult(tg, ok, rtt, None if ok else "no reply")
                                    for tg, ok, rtt in r.replies))
            if obs.verdict is not None:
                changes.append(Change(r.t, obs.verdict.link == LinkHealth.DOWN))
    return changes


def runs_rule(samples: Iterable[tuple[float, bool]], *, down: int, up: int) -> list[Change]:
    """Down after `down` failed samples in a row, up after `up` good ones; starts up.
    (mwan3track's score: while online a success refills it, while offline a failure
    empties it, so it amounts to runs in a row.)"""
    changes: list[Change] = []
    is_down, bad, good = False, 0, 0
    for t, ok in samples:
        bad, good = (0, good + 1) if ok else (bad + 1, 0)
        if not is_down and bad >= down:
            is_down = True
            changes.append(Change(t, True))
        elif is_down and good >= up:
            is_down = False
            changes.append(Change(t, False))
    return changes


def mwan3(rounds: Sequence[Round], *, every: int = MWAN3_EVERY, down: int = MWAN3_DOWN,
          up: int = MWAN3_UP, reliability: int = MWAN3_RELIABILITY,
          late_fail: float = MWAN3_LATE_FAIL, max_gap: float = 3.0) -> list[Change]:
    """Every `every`-th round is one mwan3 sample: good when >= `reliability` targets
    answered."""
    changes: list[Change] = []
    for seg in segments(rounds, max_gap):
        samples = [(r.t + (0.0 if ok else late_fail), ok)
                   for r in seg[::every] for ok in [r.answered() >= reliability]]
        changes += runs_rule(samples, down=down, up=up)
    return changes


def loss_alarm(samples: Iterable[tuple[float, bool]], *, window: float, alarm_loss: float,
               hold: float) -> list[Change]:
    """Loss over the samples of the last `window` seconds; the alarm is raised once
    loss >= `alarm_loss` has held for `hold` seconds without a break (our reading of
    dpinger/pfSense's hold), and cleared as soon as loss falls below it."""
    changes: list[Change] = []
    win: deque[tuple[float, bool]] = deque()
    lost = 0
    since: float | None = None
    alarmed = False
    for t, ok in samples:
        win.append((t, ok))
        lost += not ok
        while win and win[0][0] <= t - window:
            lost -= not win.popleft()[1]
        high = lost / len(win) >= alarm_loss
        if not high:
            since = None
            if alarmed:
                alarmed = False
                changes.append(Change(t, False))
            continue
        if since is None:
            since = t
        if not alarmed and t - since >= hold:
            alarmed = True
            changes.append(Change(t, True))
    return changes


def dpinger(rounds: Sequence[Round], *, target_index: int = 0,
            window: float = DPINGER_WINDOW, alarm_loss: float = DPINGER_ALARM_LOSS,
            hold: float = DPINGER_HOLD, late_fail: float = DPINGER_LATE_FAIL,
            max_gap: float = 3.0) -> list[Change]:
    """One monitor address (the gateway: the first target), every round one probe."""
    changes: list[Change] = []
    for seg in segments(rounds, max_gap):
        samples = sorted((r.t + (0.0 if ok else late_fail), ok)
                         for r in seg for ok in [r.replies[target_index][1]])
        changes += loss_alarm(samples, window=window, alarm_loss=alarm_loss, hold=hold)
    return changes


def downs_between(changes: Sequence[Change], t0: float, t1: float) -> list[float]:
    return [c.t for c in changes if c.down and t0 <= c.t < t1]


def down_at(changes: Sequence[Change], t: float) -> bool:
    """Whether the rule had the primary declared down at time `t`."""
    state = False
    for c in changes:
        if c.t > t:
            break
        state = c.down
    return state


def detection(changes: Sequence[Change], cut: float, until: float) -> float | None:
    """Seconds from `cut` to the rule's first down declaration before `until`."""
    hits = downs_between(changes, cut, until)
    return round(hits[0] - cut, 3) if hits else None
