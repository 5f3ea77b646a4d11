"""Which audit events become notices to a person, and when: pure, no I/O, no clock.

`NoticePolicy.decide(event, now, local)` takes the caller's monotonic `now` and the
local wall time `local` and answers a `Notice` or None:

- only the kinds of `[notify] kinds` (transitions, probe alarms) become notices;
- a probe alarm inside `quiet_hours` (local time, a window may cross midnight) is held
  back; a transition never is;
- at most `max_per_hour` notices go out in any 3600 s of `now` (a sliding window);
  more are held back;
- the next notice that goes out says how many were held back and why, and points to
  the journal, which has every event.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from ..config_outside import NotifyConfig
from ..model import AuditEvent, EventKind

# The sliding window of `max_per_hour`, on the caller's monotonic clock.
RATE_WINDOW = 3600.0
# A notice's body before the held-back line: a phone's screen, not the journal.
BODY_MAX = 500

_KIND_LABEL = {EventKind.TRANSITION: "transition", EventKind.PROBE_ALARM: "probe alarm"}


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice to a person: what Apprise sends to every URL."""

    title: str
    body: str
    kind: EventKind


def parse_window(text: str) -> tuple[time, time]:
    """`HH:MM-HH:MM` (validated by the config) as its start and end."""
    start, end = text.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def in_window(window: tuple[time, time], at: time) -> bool:
    """Whether `at` is in [start, end); a window whose end is before its start crosses
    midnight (22:00-07:00: from 22:00 to 06:59)."""
    start, end = window
    if start < end:
        return start <= at < end
    return at >= start or at < end


def site_title(template: str, site: str) -> str:
    """`[notify] title` with `{site}` filled in; other braces are kept as written."""
    try:
        return template.format(site=site)
    except (KeyError, IndexError, ValueError):
        return template.replace("{site}", site)


def compact(detail: dict[str, Any]) -> str:
    """The detail on one line: `key=value`, values as compact JSON unless plain text."""
    parts = []
    for key, value in detail.items():
        text = value if isinstance(value, str) else json.dumps(
            value, separators=(",", ":"), default=str, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts).replace("\n", " ")


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def held_line(quiet: int, rate: int) -> str:
    """`3 notices held back: 2 in quiet hours, 1 over the rate limit; see the journal`."""
    total = quiet + rate
    why = [f"{n} {what}" for n, what in ((quiet, "in quiet hours"),
                                          (rate, "over the rate limit")) if n]
    noun = "notice" if total == 1 else "notices"
    return f"{total} {noun} held back: {', '.join(why)}; see the journal"


def render(event: AuditEvent, title: str) -> Notice:
    """The notice for one event: the title plus the kind; the reason, from -> to for a
    transition and the detail on one line, at most BODY_MAX characters."""
    lines = [event.reason]
    if event.kind is EventKind.TRANSITION:
        before = event.from_state.value if event.from_state else "?"
        after = event.to_state.value if event.to_state else "?"
        lines.append(f"{before} -> {after}")
    if event.detail:
        lines.append(compact(event.detail))
    label = _KIND_LABEL.get(event.kind, event.kind.value)
    return Notice(f"{title}: {label}", shortened("\n".join(lines), BODY_MAX), event.kind)


class NoticePolicy:
    """The `[notify]` rules for one site. Holds the recent send times and the counts of
    notices held back since the last one that went out."""

    def __init__(self, cfg: NotifyConfig, site: str) -> None:
        self.kinds = frozenset(EventKind(kind) for kind in cfg.kinds)
        self.max_per_hour = cfg.max_per_hour
        self.quiet_hours = None if cfg.quiet_hours is None else parse_window(cfg.quiet_hours)
        self.title = site_title(cfg.title, site)
        self._sent: deque[float] = deque()   # monotonic times of the notices in the window
        self.held_quiet = 0                  # held back in quiet hours, since the last notice
        self.held_rate = 0                   # held back over the rate limit, since then

    def quiet_now(self, local: datetime | time) -> bool:
        """Whether `local` (wall time) is inside the quiet hours."""
        at = local.time() if isinstance(local, datetime) else local
        return self.quiet_hours is not None and in_window(self.quiet_hours, at)

    def decide(self, event: AuditEvent, now: float, local: datetime | time) -> Notice | None:
        """The notice for `event` at monotonic `now` and wall time `local`, or None:
        not a kind to notify, or held back (counted; the next notice says so)."""
        if event.kind not in self.kinds:
            return None
        if event.kind is EventKind.PROBE_ALARM and self.quiet_now(local):
            self.held_quiet += 1
            return None
        while self._sent and now - self._sent[0] >= RATE_WINDOW:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_hour:
            self.held_rate += 1
            return None
        self._sent.append(now)
        notice = render(event, self.title)
        if self.held_quiet or self.held_rate:
            body = f"{notice.body}\n{held_line(self.held_quiet, self.held_rate)}"
            notice = Notice(notice.title, body, notice.kind)
            self.held_quiet = self.held_rate = 0
        return notice
