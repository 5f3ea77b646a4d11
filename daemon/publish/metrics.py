"""Prometheus metrics (opt-in, `[metrics]`): what the daemon sees, for scraping.

Each `Metrics` has its own CollectorRegistry (not the process-global one) so that tests
and a lab with several daemons in one process never collide. Every series carries a
`site` label. Names follow Prometheus conventions (base units: seconds; ratios 0..1):

    dslfailover_info{site,version}                      1
    dslfailover_state{site,state}                       one-hot over the 7 state names
    dslfailover_circuit{site,circuit}                   one-hot: primary, backup, unknown
    dslfailover_primary_link{site,health}               one-hot: up, down, unknown
    dslfailover_mail_path{site,health}                  one-hot: ok, failing, unknown
    dslfailover_state_since_timestamp_seconds{site}     when the current state began
    dslfailover_state_seq{site}                         the state's sequence number
    dslfailover_probe_up{site,target}                   1 when the target is healthy
    dslfailover_probe_rtt_seconds{site,target}          mean RTT over the window (NaN: none)
    dslfailover_probe_loss_ratio{site,target}           loss over the window, 0..1
                                  (the three probe series are absent while a target is paused)
    dslfailover_transitions_total{site,from,to,reason_kind}   reason_kind bounded, see below
    dslfailover_router_actions_total{site,target,result}      result: ok | error
    dslfailover_router_action_duration_seconds{site,target}   histogram
    dslfailover_mx_check_ok{site,check}                 1/0 per postfix_sync check name
    dslfailover_last_failover_duration_seconds{site}

Serving: a tiny asyncio HTTP handler (GET /metrics -> generate_latest), not
prometheus_client.start_http_server. Why: no thread to stop (it ends with the daemon's one
shutdown event), a port already in use is an exception in the caller's task rather than in
a thread, and each scrape has a read deadline. The exposition itself (text format, and
OpenMetrics when the scraper asks for it) is prometheus_client's own `choose_encoder`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from .. import __version__
from ..model import Circuit, LinkHealth, MailPath, ProbeSummary, State, StateSnapshot

log = structlog.get_logger("dslfailover.metrics")

# Bounds reading one scrape's request head; a stuck client must not hold a connection.
SCRAPE_READ_TIMEOUT = 5.0
# Bounds sending the metrics page to a scraper that stopped reading.
SCRAPE_WRITE_TIMEOUT = 5.0
# Longest request head accepted (request line and headers); Prometheus sends < 1 KiB.
MAX_REQUEST_HEAD = 16 * 1024

# Distinct `reason_kind` label values kept; later new ones count as "other". A label fed
# from free text (a pid, a retry number) would otherwise grow the series without bound.
MAX_REASON_KINDS = 32

# Router applies take from a second (Linux) to minutes (a Netopia restart).
_ROUTER_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0)


class MetricsError(Exception):
    """The metrics endpoint cannot be served (address in use, bad host)."""


class Metrics:
    """The daemon's metrics for one site. Call the observers; `serve()` exposes them."""

    def __init__(self, site: str) -> None:
        # No `*_created` series: they double the series count for nothing a dashboard uses
        # (process-wide switch of prometheus_client; the daemon has no other metrics).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.site = site
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        info = Gauge("dslfailover_info", "Version of the running daemon.",
                     ["site", "version"], registry=r)
        info.labels(site, __version__).set(1)
        self._state = Gauge("dslfailover_state",
                            "Current state (1 for the current one, 0 for the others).",
                            ["site", "state"], registry=r)
        self._circuit = Gauge("dslfailover_circuit",
                              "Circuit the router is on (one-hot).", ["site", "circuit"],
                              registry=r)
        self._link = Gauge("dslfailover_primary_link", "Health of the primary circuit "
                           "(one-hot).", ["site", "health"], registry=r)
        self._mail = Gauge("dslfailover_mail_path", "Health of the backup MX's mail path "
                           "(one-hot).", ["site", "health"], registry=r)
        self._since = Gauge("dslfailover_state_since_timestamp_seconds",
                            "Unix time when the current state began.", ["site"], registry=r)
        self._seq = Gauge("dslfailover_state_seq", "Sequence number of the current state.",
                          ["site"], registry=r)
        self._probe_up = Gauge("dslfailover_probe_up", "1 when the probe target is healthy.",
                               ["site", "target"], registry=r)
        self._rtt = Gauge("dslfailover_probe_rtt_seconds",
                          "Mean round-trip time over the monitor's window (NaN: no reply).",
                          ["site", "target"], registry=r)
        self._loss = Gauge("dslfailover_probe_loss_ratio",
                           "Share of probes lost over the monitor's window (0..1).",
                           ["site", "target"], registry=r)
        self._transitions = Counter("dslfailover_transitions",
                                    "State transitions by kind of reason.",
                                    ["site", "from", "to", "reason_kind"], registry=r)
        self._router_actions = Counter("dslfailover_router_actions",
                                       "Router WAN changes by target circuit and result.",
                                       ["site", "target", "result"], registry=r)
        self._router_seconds = Histogram("dslfailover_router_action_duration_seconds",
                                         "Duration of router WAN changes.", ["site", "target"],
                                         buckets=_ROUTER_BUCKETS, registry=r)
        self._mx = Gauge("dslfailover_mx_check_ok", "1 when the backup MX check holds.",
                         ["site", "check"], registry=r)
        self._failover = Gauge("dslfailover_last_failover_duration_seconds",
                               "From the primary found down to backup verified, last time.",
                               ["site"], registry=r)
        self._reason_kinds: set[str] = set()
        # Show every enum value from the start, so that dashboards see 0 rather than nothing.
        self.set_state(None)

    def observe_probe(self, summary: ProbeSummary) -> None:
        target = summary.name
        if summary.paused or summary.loss is None:
            # not probed now: no sample rather than the last one (a frozen probe_up=1)
            for gauge in (self._probe_up, self._rtt, self._loss):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.site, target)
            return
        self._probe_up.labels(self.site, target).set(1 if summary.ok else 0)
        rtt = math.nan if summary.rtt_ms is None else summary.rtt_ms / 1000.0
        self._rtt.labels(self.site, target).set(rtt)
        self._loss.labels(self.site, target).set(summary.loss)

    def set_state(self, snap: StateSnapshot | None) -> None:
        """Publish a snapshot (None: before the first one, everything unknown)."""
        state = snap.state if snap else None
        for s in State:
            self._state.labels(self.site, s.value).set(1 if s is state else 0)
        _one_hot(self._circuit, self.site, Circuit, snap.circuit if snap else Circuit.UNKNOWN)
        _one_hot(self._link, self.site, LinkHealth,
                 snap.primary_link if snap else LinkHealth.UNKNOWN)
        _one_hot(self._mail, self.site, MailPath, snap.mail_path if snap else MailPath.UNKNOWN)
        if snap is not None:
            self._since.labels(self.site).set(snap.since.timestamp())
            self._seq.labels(self.site).set(snap.seq)

    def count_transition(self, from_state: State, to_state: State, reason_kind: str) -> None:
        kind = self._reason_kind(reason_kind)
        self._transitions.labels(self.site, from_state.value, to_state.value, kind).inc()

    def _reason_kind(self, text: str) -> str:
        """A bounded label: lower snake case, digits folded to N, at most MAX_REASON_KINDS."""
        slug = re.sub(r"\d+", "N", text.strip().lower())
        slug = re.sub(r"[^a-z0-9N]+", "_", slug).strip("_")[:48] or "unspecified"
        if slug not in self._reason_kinds:
            if len(self._reason_kinds) >= MAX_REASON_KINDS:
                return "other"
            self._reason_kinds.add(slug)
        return slug

    def router_action(self, target: str, ok: bool, seconds: float) -> None:
        self._router_actions.labels(self.site, target, "ok" if ok else "error").inc()
        self._router_seconds.labels(self.site, target).observe(seconds)

    def mx_check(self, name: str, ok: bool) -> None:
        self._mx.labels(self.site, name).set(1 if ok else 0)

    def failover_duration(self, seconds: float) -> None:
        self._failover.labels(self.site).set(seconds)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type (OpenMetrics if `accept` asks)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        """Serve GET /metrics on host:port until `stop` is set."""
        try:
            server = await asyncio.start_server(self._on_client, host, port,
                                                limit=MAX_REQUEST_HEAD)
        except OSError as exc:
            raise MetricsError(
                f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        log.info("metrics_listening", host=host, port=port)
        try:
            await stop.wait()
        finally:
            server.close()
            await server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SCRAPE_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, ctype = self._respond(head)
            writer.write(_http_response(status, body, ctype, head_only=head.startswith(b"HEAD")))
            async with asyncio.timeout(SCRAPE_WRITE_TIMEOUT):
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass  # a scraper that went away or sent nonsense gets nothing more
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SCRAPE_WRITE_TIMEOUT):
                    await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[str, bytes, str]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", b"bad request line\n", "text/plain"
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"only GET\n", "text/plain"
        if target.split("?", 1)[0] not in ("/metrics", "/"):
            return "404 Not Found", b"try /metrics\n", "text/plain"
        accept = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        body, ctype = self.render(accept)
        return "200 OK", body, ctype


def _one_hot(gauge: Gauge, site: str, values: type[Circuit] | type[LinkHealth] |
             type[MailPath], current: Circuit | LinkHealth | MailPath) -> None:
    for value in values:
        gauge.labels(site, value.value).set(1 if value == current else 0)


def _http_response(status: str, body: bytes, content_type: str, *, head_only: bool) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
    return head if head_only else head + body
