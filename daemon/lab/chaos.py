"""The chaos soak's pure half: the seeded fault schedule, the invariant checks over what
was recorded, and the report. The half that injects faults and watches the lab is
chaos_run.py; the bench (tests/bench/bench_chaos.py) and the suite's short version
(tests/lab/test_chaos.py) both run it.

Faults come one at a time (each is injected, held, cleared, and the daemon is given
time to settle before the next), so what the daemon did can be put down to the fault
that caused it. Faults that need the daemon to act while they last (the router's telnet
hanging or refusing, a slow restart, and at random sshd down or a daemon kill) cut the
primary as well: the daemon must fail over through the fault.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal[
    "cut", "flap", "loss_burst", "random_loss", "one_way_loss", "router_hang",
    "router_refuse", "router_slow_restart", "sshd_down", "broker_restart", "daemon_kill",
    "daemon_term"]
KINDS: tuple[FaultKind, ...] = (
    "cut", "flap", "loss_burst", "random_loss", "one_way_loss", "router_hang",
    "router_refuse", "router_slow_restart", "sshd_down", "broker_restart", "daemon_kill",
    "daemon_term")
# How much slower than usual a "slow restart" keeps the router away.
SLOW_RESTART_FACTOR = 3.0
# An event missing on MQTT that was emitted this soon before a SIGKILL is reported as
# `mqtt_no_gap_at_kill9`: it was still in the dead process's send buffer.
KILL_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of the schedule: held `hold` seconds, then cleared; `gap` quiet seconds
    after the daemon settled, before the next."""

    kind: FaultKind
    hold: float
    gap: float
    with_cut: bool = False   # the primary is cut while it lasts (the daemon must act)
    percent: int = 0         # loss faults: how much
    times: int = 0           # flap: how many cuts
    down: float = 0.0        # flap: seconds cut each time
    up: float = 0.0          # flap: seconds restored between
    delay: float = 0.0       # daemon faults: seconds from the cut to the signal

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v)
                for k, v in asdict(self).items() if v or k in ("kind", "hold")}


def _fault(rng: random.Random, kind: FaultKind, router_restart: float) -> Fault:
    u = rng.uniform
    gap = u(2.0, 6.0)
    if kind == "cut":
        return Fault(kind, u(8.0, 25.0), gap)
    if kind == "flap":
        times, down, up = rng.randint(3, 6), u(1.0, 4.0), u(1.0, 4.0)
        return Fault(kind, times * (down + up), gap, times=times, down=down, up=up)
    if kind == "loss_burst":
        return Fault(kind, u(1.0, 3.0), gap, percent=100)
    if kind == "random_loss":
        return Fault(kind, u(20.0, 60.0), gap, percent=20)
    if kind == "one_way_loss":
        return Fault(kind, u(15.0, 40.0), gap, percent=rng.choice((20, 50, 100)))
    if kind in ("router_hang", "router_refuse"):
        return Fault(kind, u(8.0, 25.0), gap, with_cut=True)
    if kind == "router_slow_restart":
        return Fault(kind, router_restart * SLOW_RESTART_FACTOR + u(3.0, 8.0), gap,
                     with_cut=True)
    if kind == "sshd_down":
        return Fault(kind, u(15.0, 40.0), gap, with_cut=rng.random() < 0.5)
    if kind == "broker_restart":
        return Fault(kind, u(1.0, 10.0), gap)
    # daemon_kill, daemon_term: the signal comes `delay` after the cut (when cut), at a
    # moment between detection and the end of the move; `hold` is how long it stays down
    cut = rng.random() < 0.6
    return Fault(kind, u(0.5, 3.0), gap, with_cut=cut,
                 delay=u(0.0, 4.0 + router_restart) if cut else 0.0)


def schedule(seed: int, *, router_restart: float,
             kinds: Sequence[FaultKind] = KINDS) -> Iterator[Fault]:
    """The faults in order, without end: every kind once per round, in a seeded order, so
    that a long enough run injects each kind equally often. Same seed, same faults."""
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"fault kinds {sorted(unknown) or '(none)'}: use {', '.join(KINDS)}")
    rng = random.Random(seed)
    while True:
        order = list(kinds)
        rng.shuffle(order)
        for kind in order:
            yield _fault(rng, kind, router_restart)


# ---- what was recorded, and the checks over it -------------------------------------------

@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: which, when (seconds into the run), and the evidence."""

    invariant: str
    at: float
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "at_s": round(self.at, 2), **self.detail}


@dataclass
class Episode:
    """One fault as it happened, and what the daemon did until it settled."""

    fault: Fault
    at: float                       # seconds into the run it was injected
    settled: bool = False           # daemon back on a stable state, the router idle
    settle_s: float | None = None   # clear -> settled
    transitions: list[str] = field(default_factory=list)   # "a->b @ +t s"
    final_state: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fault": self.fault.as_dict(), "at_s": round(self.at, 1),
                "settled": self.settled,
                "settle_s": None if self.settle_s is None else round(self.settle_s, 2),
                "transitions": self.transitions, "final_state": self.final_state,
                **({"notes": self.notes} if self.notes else {})}


def json_object(raw: object) -> dict[str, Any]:
    """A payload's JSON object ({} when it is not one)."""
    try:
        value = json.loads(str(raw))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def mqtt_events(lines: Iterable[Mapping[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The `<prefix>/event` payloads an mqttlog file holds, in the order they came, each
    with the time it came (`_at`)."""
    events = []
    for line in lines:
        if line.get("topic") == f"{prefix}/event" and (p := json_object(line.get("payload"))):
            events.append({**p, "_at": float(line["at"])})
    return events


def check_seq(journal: Sequence[Mapping[str, Any]], mqtt: Sequence[Mapping[str, Any]],
              kills: Sequence[float], at: float) -> tuple[list[Violation], dict[str, Any]]:
    """`seq` over the whole run: strictly increasing in the journal (the daemon's log,
    across its restarts) and on MQTT (an event received twice, same seq and reason, is
    the at-least-once redelivery the contract allows, and counted); every journal event
    on MQTT (no gap), with the same reason. `kills`: epoch times of kill -9, to say
    whether a missing event was emitted just before one."""
    found: list[Violation] = []
    jseq = [int(e.get("seq") or 0) for e in journal]
    for prev, nxt in itertools.pairwise(jseq):
        if nxt <= prev:
            found.append(Violation("journal_seq_increasing", at, {
                "seq": nxt, "after": prev,
                "events": [str(e.get("event")) for e in journal if e.get("seq") in (prev, nxt)]}))
    seen: dict[int, str] = {}
    duplicates = 0
    last = 0
    for e in mqtt:
        seq, reason = int(e.get("seq") or 0), str(e.get("reason"))
        if seen.get(seq) == reason:
            duplicates += 1
            continue
        if seq <= last:
            found.append(Violation("mqtt_seq_increasing", at, {
                "seq": seq, "after": last, "reason": reason, "earlier_reason": seen.get(seq)}))
        seen.setdefault(seq, reason)
        last = max(last, seq)
    by_seq = {int(e.get("seq") or 0): e for e in journal}
    missing = sorted(set(by_seq) - set(seen))
    for seq in missing:
        e = by_seq[seq]
        stamp = e.get("_at")
        before_kill = [round(k - stamp, 3) for k in kills
                       if isinstance(stamp, float) and 0 <= k - stamp <= KILL_WINDOW]
        # one the process emitted just before a SIGKILL died with its send buffer
        found.append(Violation("mqtt_no_gap_at_kill9" if before_kill else "mqtt_no_gap", at, {
            "seq": seq, "event": str(e.get("event")), "kind": e.get("event_kind"),
            **({"emitted_s_before_kill9": before_kill[0]} if before_kill else {})}))
    # a seq the journal holds twice is reported above already; compare the others
    once = {s for s, n in Counter(jseq).items() if n == 1}
    differ = [s for s, reason in seen.items() if s in once
              and reason != str(by_seq[s].get("reason", by_seq[s].get("event")))]
    for seq in differ:
        found.append(Violation("mqtt_matches_journal", at, {
            "seq": seq, "mqtt": seen[seq], "journal": str(by_seq[seq].get("event"))}))
    summary = {"journal_events": len(journal), "mqtt_events": len(mqtt),
               "mqtt_duplicates": duplicates, "missing_on_mqtt": len(missing),
               "last_seq": max(jseq, default=0)}
    return found, summary


def by_kind(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Per kind of fault: how often, how often the daemon settled and how fast, and the
    transitions it made (counted over the episodes)."""
    out: dict[str, Any] = {}
    for kind in dict.fromkeys(e.fault.kind for e in episodes):
        mine = [e for e in episodes if e.fault.kind == kind]
        moves = Counter(t.split(" @")[0] for e in mine for t in e.transitions)
        settle = sorted(e.settle_s for e in mine if e.settle_s is not None)
        out[kind] = {"injected": len(mine), "settled": sum(e.settled for e in mine),
                     "settle_s_max": round(settle[-1], 2) if settle else None,
                     "transitions": dict(moves.most_common()),
                     "no_transition": sum(not e.transitions for e in mine),
                     "final_states": dict(Counter(str(e.final_state) for e in mine))}
    return out


def tally(violations: Sequence[Violation]) -> dict[str, int]:
    return dict(Counter(v.invariant for v in violations).most_common())


@dataclass(slots=True)
class Life:
    """One daemon process's resources (the `process` of its status), sampled all along:
    the peak, and the first and last sample at rest (on the primary, no action in
    flight) to tell growth from the cost of an action."""

    started: float
    samples: int = 0
    peak: dict[str, int] = field(default_factory=dict)
    first_at_rest: dict[str, int] | None = None
    last_at_rest: dict[str, int] | None = None
    last_at: float = 0.0

    def add(self, process: Mapping[str, Any], *, at_rest: bool, at: float) -> None:
        figures = {k: int(v) for k, v in process.items() if isinstance(v, int)}
        self.samples += 1
        self.last_at = at
        self.peak = {k: max(v, self.peak.get(k, v)) for k, v in figures.items()}
        if at_rest:
            self.first_at_rest = self.first_at_rest or figures
            self.last_at_rest = figures

    def growth_at_rest(self) -> dict[str, int] | None:
        if self.first_at_rest is None or self.last_at_rest is None:
            return None
        return {k: v - self.first_at_rest.get(k, v) for k, v in self.last_at_rest.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"lived_s": round(self.last_at - self.started, 1), "samples": self.samples,
                "peak": self.peak, "first_at_rest": self.first_at_rest,
                "last_at_rest": self.last_at_rest, "growth_at_rest": self.growth_at_rest()}


def resources_report(lives: Sequence[Life]) -> dict[str, Any]:
    """The daemon's resources over the soak: the peak RSS of any life, and per life the
    growth between its first and last sample at rest (the longest life says most)."""
    sampled = [life for life in lives if life.samples]
    peak_kb = max((life.peak.get("rss_kb", 0) for life in sampled), default=0)
    longest = max(sampled, key=lambda life: life.last_at - life.started, default=None)
    return {"peak_rss_mb": round(peak_kb / 1024, 1),
            "longest_life": longest.as_dict() if longest else None,
            "lives": [life.as_dict() for life in sampled]}
