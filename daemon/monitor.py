"""Turns probe rounds into verdicts about the primary circuit: quorum, runs, windows.

Pure: it takes results and times and returns verdicts; the caller does the probing.
- A round is good when at least `quorum` targets answered.
- The link is declared down after `down_after` failed rounds in a row, and up after
  `up_after` good rounds in a row (asymmetric on purpose: leaving is cheap, coming
  back must be earned). A verdict is returned only when the declared state changes.
- Given the round's start time and the time it is observed (the caller's monotonic
  clock), a verdict's evidence says how long detection took: `detect_s`, from the start
  of the first round of the run to the verdict.
- Per target, a sliding window of the last `window` rounds gives loss and mean RTT for
  `<prefix>/probe/<name>` and the evidence attached to each verdict.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .model import LinkHealth, ProbeSummary
from .probes.icmp import EchoResult


@dataclass(frozen=True, slots=True)
class Verdict:
    link: LinkHealth
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TargetChange:
    """A target started or stopped answering (logged once per change, not per round)."""

    target: str
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class Observation:
    verdict: Verdict | None
    changes: tuple[TargetChange, ...] = ()
    round_ok: bool = True


@dataclass
class _Window:
    results: deque[EchoResult] = field(default_factory=deque)
    last_ok: bool | None = None


class Monitor:
    def __init__(self, targets: list[str], *, quorum: int, down_after: int, up_after: int,
                 window: int) -> None:
        self.targets = list(targets)
        self.quorum = quorum
        self.down_after = down_after
        self.up_after = up_after
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget runs and windows (after the router changed circuit: old evidence is moot)."""
        self.link = LinkHealth.UNKNOWN
        self.bad_run = 0
        self.good_run = 0
        self._run_started: float | None = None  # start of the first round of this run
        self._windows = {t: _Window(deque(maxlen=self.window)) for t in self.targets}

    def observe(self, replies: tuple[EchoResult, ...], *, started: float | None = None,
                now: float | None = None) -> Observation:
        """One round's replies; `started` (when it was sent) and `now` (when it is
        observed) give the verdict's `detect_s`."""
        changes: list[TargetChange] = []
        for reply in replies:
            win = self._windows[reply.target]
            win.results.append(reply)
            if win.last_ok is not None and win.last_ok != reply.ok:
                changes.append(TargetChange(reply.target, reply.ok, reply.error))
            elif win.last_ok is None and not reply.ok:
                changes.append(TargetChange(reply.target, False, reply.error))
            win.last_ok = reply.ok
        answered = sum(1 for r in replies if r.ok)
        round_ok = answered >= self.quorum
        if round_ok:
            if self.good_run == 0:
                self._run_started = started
            self.good_run += 1
            self.bad_run = 0
        else:
            if self.bad_run == 0:
                self._run_started = started
            self.bad_run += 1
            self.good_run = 0
        detect = (None if self._run_started is None or now is None
                  else max(0.0, now - self._run_started))
        verdict = None
        if not round_ok and self.bad_run >= self.down_after and self.link != LinkHealth.DOWN:
            self.link = LinkHealth.DOWN
            verdict = Verdict(LinkHealth.DOWN, self._evidence(replies, answered, detect))
        elif round_ok and self.good_run >= self.up_after and self.link != LinkHealth.UP:
            self.link = LinkHealth.UP
            verdict = Verdict(LinkHealth.UP, self._evidence(replies, answered, detect))
        return Observation(verdict, tuple(changes), round_ok)

    def _evidence(self, replies: tuple[EchoResult, ...], answered: int,
                  detect: float | None) -> dict[str, Any]:
        run = self.bad_run if self.link == LinkHealth.DOWN else self.good_run
        word = "failed" if self.link == LinkHealth.DOWN else "good"
        targets = {}
        for t in self.targets:
            loss, rtt = self.stats(t)
            targets[t] = {"loss": round(loss, 3), "rtt_ms": None if rtt is None else round(rtt, 2)}
        timing = {} if detect is None else {"detect_s": round(detect, 3)}
        return {
            **timing,
            "summary": f"{answered}/{len(replies)} targets answered; {run} {word} rounds "
                       f"in a row (quorum {self.quorum})",
            "answered": answered,
            "rounds": run,
            "quorum": self.quorum,
            "targets": targets,
            "errors": {r.target: r.error for r in replies if not r.ok and r.error},
        }

    def stats(self, target: str) -> tuple[float, float | None]:
        """(loss 0..1, mean RTT in ms of the answered probes) over the window."""
        results = self._windows[target].results
        if not results:
            return 0.0, None
        answered = [r.rtt_ms for r in results if r.ok and r.rtt_ms is not None]
        loss = 1.0 - len(answered) / len(results)
        return loss, (sum(answered) / len(answered)) if answered else None

    def summaries(self, at: datetime) -> list[ProbeSummary]:
        out = []
        for t in self.targets:
            win = self._windows[t]
            loss, rtt = self.stats(t)
            out.append(ProbeSummary(name=t, ok=bool(win.last_ok), loss=loss, rtt_ms=rtt, at=at))
        return out


@dataclass(frozen=True, slots=True)
class MailPathVerdict:
    """The mail path through the tunnel changed: ok, or failing with what failed."""

    ok: bool
    detail: str = ""


class MailPathMonitor:
    """Hysteresis of the tunnel's SMTP probe: pure, like `Monitor`.

    A good probe is reported at once when it changes the verdict (the first one too); a
    failing one only after `fail_after` failures in a row, so that one lost probe is not an
    alarm. A verdict is returned only when it changes.
    """

    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after
        self.failures = 0
        self.reported: bool | None = None

    def observe(self, ok: bool, detail: str = "") -> MailPathVerdict | None:
        self.failures = 0 if ok else self.failures + 1
        if not ok and self.failures < self.fail_after:
            return None
        if ok == self.reported:
            return None
        self.reported = ok
        return MailPathVerdict(ok, "" if ok else detail)
