"""Prometheus metrics, scraped over real HTTP from a free loopback port and parsed."""

from __future__ import annotations

import asyncio
import contextlib
import math
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.lab.launcher import port_open
from daemon.model import (
    Circuit,
    LinkHealth,
    MailPath,
    ProbeSummary,
    State,
    StateSnapshot,
)
from daemon.publish.metrics import Metrics, MetricsError
from tests.harness import free_port, served

# Bounds one scrape (connect, request, whole body).
SCRAPE_TIMEOUT = 5.0
# Bounds the endpoint's start and stop in these tests.
SERVE_TIMEOUT = 5.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextlib.asynccontextmanager
async def endpoint(metrics: Metrics) -> AsyncIterator[str]:
    port = free_port()
    async with served(lambda stop: metrics.serve("127.0.0.1", port, stop),
                      lambda: port_open("127.0.0.1", port), "the metrics endpoint",
                      SERVE_TIMEOUT):
        yield f"http://127.0.0.1:{port}"


def _get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=SCRAPE_TIMEOUT) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


async def scrape(url: str) -> Samples:
    status, _, text = await asyncio.to_thread(_get, url + "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({"site": "unixwiz", **labels}.items())


def snapshot(state: State, circuit: Circuit) -> StateSnapshot:
    return StateSnapshot(state=state, circuit=circuit, primary_link=LinkHealth.DOWN,
                         mail_path=MailPath.OK,
                         since=datetime(2026, 11, 25, 4, 0, 0, tzinfo=UTC),
                         reason="primary down", seq=12)


async def test_state_is_one_hot_with_circuit_and_health() -> None:
    metrics = Metrics("unixwiz")
    metrics.set_state(snapshot(State.PRIMARY, Circuit.PRIMARY))
    metrics.set_state(snapshot(State.BACKUP, Circuit.BACKUP))
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert {s.value: got[key("dslfailover_state", state=s.value)] for s in State} == {
        s.value: (1.0 if s is State.BACKUP else 0.0) for s in State}
    assert got[key("dslfailover_circuit", circuit="backup")] == 1.0
    assert got[key("dslfailover_circuit", circuit="primary")] == 0.0
    assert got[key("dslfailover_primary_link", health="down")] == 1.0
    assert got[key("dslfailover_primary_link", health="up")] == 0.0
    assert got[key("dslfailover_mail_path", health="ok")] == 1.0
    assert got[key("dslfailover_state_seq")] == 12.0
    assert got[key("dslfailover_state_since_timestamp_seconds")] == datetime(
        2026, 11, 25, 4, 0, 0, tzinfo=UTC).timestamp()


async def test_before_any_state_every_state_is_zero_and_health_unknown() -> None:
    async with endpoint(Metrics("unixwiz")) as url:
        got = await scrape(url)
    assert [got[key("dslfailover_state", state=s.value)] for s in State] == [0.0] * 7
    assert got[key("dslfailover_circuit", circuit="unknown")] == 1.0
    assert got[key("dslfailover_mail_path", health="unknown")] == 1.0


async def test_probe_rtt_and_loss_per_target() -> None:
    metrics = Metrics("unixwiz")
    at = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    metrics.observe_probe(ProbeSummary("203.0.113.1", True, 0.05, 12.5, at))
    metrics.observe_probe(ProbeSummary("192.0.2.53", False, 1.0, None, at))
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert got[key("dslfailover_probe_rtt_seconds", target="203.0.113.1")] == 0.0125
    assert got[key("dslfailover_probe_loss_ratio", target="203.0.113.1")] == 0.05
    assert got[key("dslfailover_probe_up", target="203.0.113.1")] == 1.0
    assert math.isnan(got[key("dslfailover_probe_rtt_seconds", target="192.0.2.53")])
    assert got[key("dslfailover_probe_loss_ratio", target="192.0.2.53")] == 1.0
    assert got[key("dslfailover_probe_up", target="192.0.2.53")] == 0.0


async def test_a_paused_target_has_no_probe_samples_rather_than_its_last_ones() -> None:
    metrics = Metrics("unixwiz")
    at = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    metrics.observe_probe(ProbeSummary("203.0.113.1", True, 0.0, 12.5, at))
    metrics.observe_probe(ProbeSummary.paused_at("203.0.113.1", at))
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert not [k for k in got if dict(k[1]).get("target") == "203.0.113.1"]


async def test_transitions_are_counted_by_from_to_and_reason_kind() -> None:
    metrics = Metrics("unixwiz")
    metrics.count_transition(State.PRIMARY, State.FAILING_OVER, "primary_down")
    metrics.count_transition(State.PRIMARY, State.FAILING_OVER, "primary_down")
    metrics.count_transition(State.FAILING_OVER, State.BACKUP, "verified")
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert got[("dslfailover_transitions_total", frozenset({
        "site": "unixwiz", "from": "primary", "to": "failing_over",
        "reason_kind": "primary_down"}.items()))] == 2.0
    assert got[("dslfailover_transitions_total", frozenset({
        "site": "unixwiz", "from": "failing_over", "to": "backup",
        "reason_kind": "verified"}.items()))] == 1.0


async def test_reason_kind_label_stays_bounded_for_free_text() -> None:
    metrics = Metrics("unixwiz")
    for pid in range(100):
        metrics.count_transition(State.PRIMARY, State.HELD, f"hold by control uid=0 pid={pid}")
    for n in range(100):
        metrics.count_transition(State.FAULT, State.FAILING_OVER, f"Reason #{n} {'x' * n}")
    async with endpoint(metrics) as url:
        got = await scrape(url)
    kinds = {dict(labels)["reason_kind"]: value for (name, labels), value in got.items()
             if name == "dslfailover_transitions_total"}
    assert kinds["hold_by_control_uid_N_pid_N"] == 100.0
    assert len(kinds) == 32 + 1
    assert kinds["other"] > 0
    assert sum(kinds.values()) == 200.0


async def test_no_created_series_are_exported() -> None:
    metrics = Metrics("unixwiz")
    metrics.count_transition(State.PRIMARY, State.HELD, "hold")
    metrics.router_action("backup", True, 1.0)
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert not [name for name, _ in got if name.endswith("_created")]


async def test_router_actions_count_results_and_time_them() -> None:
    metrics = Metrics("unixwiz")
    metrics.router_action("backup", True, 3.5)
    metrics.router_action("backup", False, 40.0)
    metrics.router_action("primary", True, 0.2)
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert got[key("dslfailover_router_actions_total", target="backup", result="ok")] == 1.0
    assert got[key("dslfailover_router_actions_total", target="backup", result="error")] == 1.0
    assert got[key("dslfailover_router_action_duration_seconds_count", target="backup")] == 2.0
    assert got[key("dslfailover_router_action_duration_seconds_sum", target="backup")] == 43.5
    assert got[key("dslfailover_router_action_duration_seconds_bucket", target="backup",
                   le="5.0")] == 1.0
    assert got[key("dslfailover_router_action_duration_seconds_bucket", target="primary",
                   le="0.5")] == 1.0


async def test_mx_checks_and_last_failover_duration() -> None:
    metrics = Metrics("unixwiz")
    metrics.mx_check("transport_compiled", True)
    metrics.mx_check("maps_fresh", False)
    metrics.failover_duration(4.25)
    async with endpoint(metrics) as url:
        got = await scrape(url)
    assert got[key("dslfailover_mx_check_ok", check="transport_compiled")] == 1.0
    assert got[key("dslfailover_mx_check_ok", check="maps_fresh")] == 0.0
    assert got[key("dslfailover_last_failover_duration_seconds")] == 4.25


async def test_two_sites_in_one_process_keep_their_own_metrics() -> None:
    first, second = Metrics("unixwiz"), Metrics("branch")
    first.failover_duration(1.0)
    second.failover_duration(2.0)
    async with endpoint(first) as url:
        got = await scrape(url)
    assert got[key("dslfailover_last_failover_duration_seconds")] == 1.0
    assert not any(dict(labels).get("site") == "branch" for _, labels in got)


async def test_info_carries_the_version() -> None:
    from daemon import __version__

    async with endpoint(Metrics("unixwiz")) as url:
        got = await scrape(url)
    assert got[key("dslfailover_info", version=__version__)] == 1.0


async def test_openmetrics_is_served_when_asked_for() -> None:
    async with endpoint(Metrics("unixwiz")) as url:
        status, ctype, text = await asyncio.to_thread(
            _get, url + "/metrics", "application/openmetrics-text; version=1.0.0")
    assert status == 200
    assert ctype.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")


async def test_other_paths_are_404() -> None:
    async with endpoint(Metrics("unixwiz")) as url:
        status, _, _ = await asyncio.to_thread(_get, url + "/admin")
    assert status == 404


async def test_garbage_request_does_not_stop_the_endpoint() -> None:
    async with endpoint(Metrics("unixwiz")) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x01 nonsense\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            answer = await reader.read()
        writer.close()
        got = await scrape(url)
    assert answer.startswith(b"HTTP/1.1 400")
    assert got[key("dslfailover_circuit", circuit="unknown")] == 1.0


async def test_port_in_use_is_a_clear_error() -> None:
    port = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        with pytest.raises(MetricsError, match=f"metrics: cannot listen on 127.0.0.1:{port}"):
            await Metrics("unixwiz").serve("127.0.0.1", port, asyncio.Event())
    finally:
        blocker.close()
        await blocker.wait_closed()
