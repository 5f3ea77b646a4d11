"""Notices to a person (`[notify]`): transitions and probe alarms through Apprise URLs.

A `Publisher` with its own loop, like MQTT. `event()` (from the daemon's loop) asks the
policy (`notify_policy`: kinds, quiet hours, rate limit) and queues the notice: it never
blocks, and a full queue drops its oldest notice. `run(quiet)` sends: each notice to every
URL at once, all bounded together by `[notify] timeout`. A failure (refused, an error, no
answer in time) is logged by the URL's index and scheme, never its text (it carries
tokens), once when a URL starts failing and once when it works again; it is never raised
and never holds the daemon. Once `quiet` is set, what is still queued gets
GOODBYE_TIMEOUT, then `run` returns.

Apprise is imported by `run` only (through `notify_urls`), never when this module is:
without `[notify]` the daemon does not pay its memory. The daemon plugs it in as

    notices = create_notices(cfg, secrets)
    if notices is not None:
        publisher.publishers.append(notices)              # the FanOut
        tg.create_task(notices.run(quiet), name="notify")  # with the other helpers
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from router_drivers import Secret

from ..config import Config, Secrets
from ..config_outside import NotifyConfig
from ..model import AuditEvent, EventKind
from ..stopping import cancel_all
from .fanout import Quiet
from .notify_policy import Notice, NoticePolicy
from .notify_urls import instantiate, scheme_of

if TYPE_CHECKING:
    from apprise import Apprise

__all__ = ["GOODBYE_TIMEOUT", "QUEUE_SIZE", "Notices", "create_notices"]

log = structlog.get_logger("dslfailover.notify")

# Notices waiting to be sent. Even at max_per_hour 3600 the URLs must be away for a while
# to fill it; then the oldest notice goes (the journal keeps every event).
QUEUE_SIZE = 100
# Bounds sending what is still queued (and the notice in flight) once `quiet` is set:
# below the daemon's bound for its helpers' stop (app.HELPERS_STOP, 3 s).
GOODBYE_TIMEOUT = 2.0
# Bounds the sender task's end once cancelled.
CANCEL_WITHIN = 0.5

_TYPES = {EventKind.TRANSITION: "info", EventKind.PROBE_ALARM: "warning"}  # Apprise's


@dataclass(slots=True)
class _Service:
    """One URL as Apprise sends to it, named in logs by `index` (its line among the
    URLs, from 1) and `scheme`."""

    index: int
    scheme: str
    apprise: Apprise
    failing: str | None = None   # why its last notice failed (logged when it changed)
    failed: int = 0              # notices failed since it last worked


class Notices(Quiet):
    """The `[notify]` publisher: hears audit events, sends some as notices."""

    def __init__(self, cfg: NotifyConfig, urls: Sequence[Secret], *, site: str,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = datetime.now,
                 queue_size: int = QUEUE_SIZE) -> None:
        self._cfg = cfg
        self._urls = tuple(urls)
        self.schemes = tuple(scheme_of(url.reveal()) for url in self._urls)
        self.policy = NoticePolicy(cfg, site)
        self._clock = clock    # monotonic: the rate limit's window
        self._wall = wall      # local wall time: the quiet hours
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
        self._services: list[_Service] = []
        self._sending = False
        self._closed = False
        self._dropping = 0     # notices dropped since the queue last had room
        self.sent = 0          # notices that reached every URL
        self.failed = 0        # notices that failed at one URL or more
        self.dropped = 0       # notices dropped from a full queue, since start

    # -- from the daemon's loop: memory only, never await ---------------------------------

    def event(self, event: AuditEvent) -> None:
        if self._closed:
            return
        notice = self.policy.decide(event, self._clock(), self._wall())
        if notice is None:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            if self._dropping == 0:
                log.warning("notify_queue_full_dropping_oldest", queue=self._queue.maxsize)
            self._dropping += 1
            self.dropped += 1
        self._queue.put_nowait(notice)

    # -- the sender ---------------------------------------------------------------------

    async def run(self, quiet: asyncio.Event) -> None:
        """Send queued notices until `quiet` is set; then what is left, within
        GOODBYE_TIMEOUT. Never raises for a URL's problem."""
        self._services = self._build()
        if not self._services:
            log.error("notify_no_usable_url", urls=len(self._urls))
            self._closed = True
            return
        sender = asyncio.create_task(self._send_loop(), name="notify-send")
        try:
            await quiet.wait()
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await self._queue.join()
        except TimeoutError:
            log.warning("notify_not_sent_at_stop", bound=GOODBYE_TIMEOUT,
                        notices=self._queue.qsize() + self._sending)
        finally:
            self._closed = True
            await cancel_all([sender], CANCEL_WITHIN)

    def _build(self) -> list[_Service]:
        """One Apprise object per URL (imports Apprise): each URL's outcome is its own."""
        from apprise import Apprise

        services = []
        for index, (url, scheme) in enumerate(zip(self._urls, self.schemes, strict=True),
                                              start=1):
            plugin = instantiate(url.reveal())
            apobj = Apprise()
            if plugin is None or not apobj.add(plugin):
                log.error("notify_url_unusable", url=index, scheme=scheme)
                continue
            services.append(_Service(index, scheme, apobj))
        return services

    async def _send_loop(self) -> None:
        while True:
            notice = await self._queue.get()
            self._sending = True
            try:
                await self._deliver(notice)
            except Exception:
                # a bug of ours or of Apprise must not end the notices for the daemon's life
                log.exception("notify_unexpected_error", kind=notice.kind.value)
            finally:
                self._sending = False
                self._queue.task_done()
            if self._dropping and self._queue.empty():
                log.info("notify_queue_drained", dropped=self._dropping)
                self._dropping = 0

    async def _deliver(self, notice: Notice) -> None:
        """`notice` to every URL at once, within `[notify] timeout` for all of them."""
        outcomes: dict[int, str] = {}

        async def one(service: _Service) -> None:
            try:
                ok = await service.apprise.async_notify(
                    body=notice.body, title=notice.title,
                    notify_type=_TYPES.get(notice.kind, "info"))
            except Exception as exc:   # never str(exc): it may quote the URL
                outcomes[service.index] = f"error {type(exc).__name__}"
            else:
                outcomes[service.index] = "sent" if ok else "refused"

        try:
            async with asyncio.timeout(self._cfg.timeout):
                await asyncio.gather(*(one(s) for s in self._services))
        except TimeoutError:
            pass   # those without an outcome: no answer in time
        ok = True
        for service in self._services:
            outcome = outcomes.get(service.index, f"no answer within {self._cfg.timeout:g}s")
            ok &= outcome == "sent"
            self._note(service, outcome, notice)
        if ok:
            self.sent += 1
        else:
            self.failed += 1

    def _note(self, service: _Service, outcome: str, notice: Notice) -> None:
        """Log a URL's change: it starts failing (or fails otherwise), or works again."""
        where = {"url": service.index, "scheme": service.scheme, "kind": notice.kind.value}
        if outcome == "sent":
            if service.failing is not None:
                log.info("notify_url_recovered", failed_notices=service.failed, **where)
            service.failing, service.failed = None, 0
            return
        service.failed += 1
        if outcome != service.failing:
            log.warning("notify_failed", why=outcome, **where)
        else:
            log.debug("notify_still_failing", why=outcome, failed_notices=service.failed,
                      **where)
        service.failing = outcome


def create_notices(cfg: Config, secrets: Secrets) -> Notices | None:
    """The notices publisher for a validated config, or None without `[notify]`."""
    if cfg.notify is None:
        return None
    return Notices(cfg.notify, secrets.notify_urls, site=cfg.site)
