"""Notices through real Apprise (json://) to endpoints on 127.0.0.1: what arrives, what
is held back and said later, and that a dead or silent endpoint never holds the daemon."""

from __future__ import annotations

import base64
import time
from datetime import datetime

from tests.harness import free_port, wait_until
from tests.notify.conftest import (
    TOKEN,
    WAIT,
    Clock,
    Endpoint,
    Logs,
    alarm,
    events_named,
    notices,
    running,
    transition,
)

# event() only asks the policy and queues: far below any network step.
EVENT_AT_ONCE = 0.05


def no_secret_in(logs: Logs) -> None:
    assert TOKEN not in repr(logs)


async def test_a_transition_reaches_the_endpoint_as_json(endpoint: Endpoint,
                                                         logs: Logs) -> None:
    pub = notices([endpoint.url()])
    async with running(pub):
        pub.event(transition())
        [body] = await endpoint.wait_for(1)
    assert body["title"] == "dslfailover office: transition"
    assert body["message"] == ("primary down: 0 of 3 targets answer\n"
                               "primary -> failing_over\nloss=1.0")
    assert body["type"] == "info"
    posted = endpoint.posted[0]
    assert posted.path == "/notify"
    assert posted.auth == "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
    assert pub.sent == 1 and pub.failed == 0
    no_secret_in(logs)


async def test_a_probe_alarm_in_quiet_hours_is_held_and_reported_next(
        endpoint: Endpoint) -> None:
    pub = notices([endpoint.url()], quiet_hours="22:00-07:00",
                  wall=datetime(2024, 5, 1, 23, 30))
    async with running(pub):
        pub.event(alarm())
        pub.event(transition())
        await endpoint.wait_for(1)
        await wait_until(lambda: pub.sent == 1, WAIT, "the notice counted as sent")
    # one queue in order: had the alarm been queued, it would have come first
    [body] = endpoint.bodies()
    assert body["title"].endswith(": transition")
    assert body["message"].endswith(
        "\n1 notice held back: 1 in quiet hours; see the journal")


async def test_the_rate_limit_holds_at_max_per_hour(endpoint: Endpoint) -> None:
    clock = Clock()
    pub = notices([endpoint.url()], clock=clock, max_per_hour=2)
    async with running(pub):
        for _ in range(3):
            pub.event(transition())
        await endpoint.wait_for(2)
        await wait_until(lambda: pub.sent == 2, WAIT, "two notices sent")
        assert len(endpoint.bodies()) == 2 and pub.policy.held_rate == 1
        clock.now += 3600
        pub.event(alarm())
        bodies = await endpoint.wait_for(3)
    assert len(bodies) == 3
    assert bodies[2]["type"] == "warning"
    assert bodies[2]["message"].endswith(
        "\n1 notice held back: 1 over the rate limit; see the journal")


async def test_an_endpoint_that_is_down_is_logged_and_the_next_notice_goes_out(
        logs: Logs) -> None:
    down = Endpoint(free_port())   # nothing listens there yet
    pub = notices([down.url()])
    async with running(pub):
        started = time.monotonic()
        pub.event(transition("first"))
        assert time.monotonic() - started < EVENT_AT_ONCE
        await wait_until(lambda: pub.failed == 1, WAIT, "the first notice failing")
        [failed] = events_named(logs, "notify_failed")
        assert failed["url"] == 1 and failed["scheme"] == "json"
        assert failed["why"] == "refused"
        down.start()   # the endpoint is back
        try:
            pub.event(transition("second"))
            [body] = await down.wait_for(1)
            await wait_until(lambda: pub.sent == 1, WAIT, "the second notice sent")
        finally:
            down.stop()
    assert body["message"].startswith("second")
    [back] = events_named(logs, "notify_url_recovered")
    assert back["url"] == 1 and back["failed_notices"] == 1
    no_secret_in(logs)


async def test_an_endpoint_that_never_answers_is_bounded_and_the_other_url_still_gets_it(
        endpoint: Endpoint, silent: str, logs: Logs) -> None:
    pub = notices([silent, endpoint.url()], timeout=0.5)
    async with running(pub):
        started = time.monotonic()
        pub.event(transition("first"))
        pub.event(transition("second"))
        assert time.monotonic() - started < EVENT_AT_ONCE
        bodies = await endpoint.wait_for(2)
        await wait_until(lambda: pub.failed == 2, WAIT, "both notices failed at url 1")
    assert [b["message"].splitlines()[0] for b in bodies] == ["first", "second"]
    # once when it started failing; the repeat is not logged again as a warning
    [failed] = events_named(logs, "notify_failed")
    assert failed["url"] == 1 and failed["why"] == "no answer within 0.5s"
    assert not [e for e in logs if e["event"] == "notify_failed" and e["url"] == 2]
    no_secret_in(logs)


async def test_quiet_sends_what_is_queued_then_run_returns(endpoint: Endpoint) -> None:
    pub = notices([endpoint.url()])
    async with running(pub) as task:
        for n in range(3):
            pub.event(transition(f"n{n}"))
    assert task.done() and not task.cancelled()
    assert [b["message"][:2] for b in endpoint.bodies()] == ["n0", "n1", "n2"]


async def test_a_full_queue_drops_the_oldest(endpoint: Endpoint, logs: Logs) -> None:
    pub = notices([endpoint.url()], queue_size=2)
    for n in range(4):   # run() is not started yet: nothing leaves the queue
        pub.event(transition(f"n{n}"))
    assert pub.dropped == 2
    assert len(events_named(logs, "notify_queue_full_dropping_oldest")) == 1
    async with running(pub):
        bodies = await endpoint.wait_for(2)
        await wait_until(lambda: pub.sent == 2, WAIT, "two notices sent")
    assert [b["message"][:2] for b in bodies] == ["n2", "n3"]
    assert events_named(logs, "notify_queue_drained")[0]["dropped"] == 2
