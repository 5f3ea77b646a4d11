"""Latency of the operator paths: a control-socket status round trip and a /metrics scrape.

Not a test (pytest does not collect it): run `.venv/bin/python -m tests.ops.bench_roundtrip`
and it prints one JSON object. Everything stays on a temp unix socket and 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from daemon.control import request
from daemon.control.server import ControlServer
from daemon.model import OperatorCommand, ProbeSummary
from daemon.publish.metrics import Metrics
from tests.harness import free_port

ROUNDS_CONTROL = 1000
ROUNDS_SCRAPE = 200
# Bounds one scrape.
SCRAPE_TIMEOUT = 5.0


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    n = len(samples)
    return {"n": n, "p50": round(samples[n // 2], 3), "p95": round(samples[n * 95 // 100], 3),
            "max": round(samples[-1], 3)}


async def _submit(cmd: OperatorCommand, wait: float | None) -> dict[str, Any]:
    return {"accepted": True, "detail": "ok"}


def _status() -> dict[str, Any]:
    return {"state": "primary", "events": [{"seq": i, "kind": "action"} for i in range(10)]}


async def main() -> dict[str, Any]:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # keep stdout JSON
    workdir = Path(tempfile.mkdtemp(prefix="dslfailover-bench-"))
    stop = asyncio.Event()
    try:
        path = workdir / "control.sock"
        server = ControlServer(path, group=None, status=_status, submit=_submit,
                               audit_rejected=lambda rejected: None)
        metrics = Metrics("bench")
        for i in range(20):
            metrics.observe_probe(ProbeSummary(f"10.0.0.{i}", True, 0.0, 5.0, datetime.now(UTC)))
        port = free_port()
        tasks = [asyncio.create_task(server.serve(stop), name="control"),
                 asyncio.create_task(metrics.serve("127.0.0.1", port, stop), name="metrics")]
        while not path.exists():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        control = []
        for _ in range(ROUNDS_CONTROL):
            t0 = time.perf_counter()
            await request(path, {"op": "status"})
            control.append((time.perf_counter() - t0) * 1000)
        url = f"http://127.0.0.1:{port}/metrics"

        def scrape() -> bytes:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as resp:
                return bytes(resp.read())

        scrapes = []
        for _ in range(ROUNDS_SCRAPE):
            t0 = time.perf_counter()
            body = await asyncio.to_thread(scrape)
            scrapes.append((time.perf_counter() - t0) * 1000)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"control_status_roundtrip_ms": _percentiles(control),
            "metrics_scrape_ms": {**_percentiles(scrapes), "bytes": len(body)}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
