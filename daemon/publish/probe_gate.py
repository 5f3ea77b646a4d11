"""When a target's `<prefix>/probe/<target>` summary goes out on MQTT (pure: time is passed in).

A probe round every 0.5 s to 4 targets would be 8 retained publishes a second that no
dashboard needs. A summary is released at once when it says something new: the first one
of a target, `ok` flipped (or the target paused or resumed), or `loss` moved by at
least `loss_step` from the last released value (a move, not a crossing of fixed marks,
so a loss that wavers around 10 % is not published every round). Otherwise it is held,
and the latest one held is released once `interval` seconds have passed since the last
release: a new subscriber still gets the current value, at most `interval` old.
`interval` 0 releases every summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import ProbeSummary

# Loss figures are fractions of a window (k / 20): 0.15 - 0.05 is 0.0999... in floats.
_LOSS_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class _Released:
    ok: bool | None     # None: paused
    loss: float | None
    at: float      # monotonic seconds of the release


def _loss_moved(old: float | None, new: float | None, step: float) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) >= step - _LOSS_SLACK


class ProbeGate:
    """The latest summary per key (a topic level) and which of them to publish, when.

    The sender publishes what `pop(now)` gives until it gives None, and then sleeps at most
    `delay(now)` unless woken; `offer` says when to wake it.
    """

    def __init__(self, interval: float, loss_step: float) -> None:
        self.interval = interval
        self.loss_step = loss_step
        self._latest: dict[str, ProbeSummary] = {}
        self._released: dict[str, _Released] = {}
        self._held: dict[str, None] = {}   # keys whose latest summary is not released yet
        self._ready: dict[str, None] = {}  # released, not popped yet (an ordered set)

    def offer(self, key: str, summary: ProbeSummary, now: float) -> bool:
        """Take the latest summary of `key`. True when the sender must wake: it is to be
        published now, or it is the first one held (the sender's sleep must end by then)."""
        self._latest[key] = summary
        last = self._released.get(key)
        if (last is None or summary.ok != last.ok
                or _loss_moved(last.loss, summary.loss, self.loss_step)
                or now - last.at >= self.interval):
            self._release(key, now)
            return True
        newly = key not in self._held
        self._held[key] = None
        return newly

    def pop(self, now: float) -> tuple[str, ProbeSummary] | None:
        """The next key to publish and its latest summary: released by `offer`, or held
        and now due (released here); None when there is nothing to publish now."""
        for key in [k for k in self._held if now - self._released[k].at >= self.interval]:
            self._release(key, now)
        if not self._ready:
            return None
        key = next(iter(self._ready))
        del self._ready[key]
        return key, self._latest[key]

    def resend_all(self) -> None:
        """A new connection: every key's latest summary is to be published again (the
        broker may have lost what it retained)."""
        self._ready = dict.fromkeys(self._latest)

    def delay(self, now: float) -> float | None:
        """Seconds until the earliest held summary falls due (0 when it is overdue), or
        None when none is held: how long the sender may sleep when nothing else wakes it."""
        if not self._held:
            return None
        due = min(self._released[k].at for k in self._held) + self.interval
        return max(0.0, due - now)

    def _release(self, key: str, now: float) -> None:
        summary = self._latest[key]
        self._released[key] = _Released(summary.ok, summary.loss, now)
        self._held.pop(key, None)
        self._ready[key] = None
