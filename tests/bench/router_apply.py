"""Benchmark: how long a failover/failback takes on each Netopia console (emulator, loopback).

    .venv/bin/python tests/bench/router_apply.py [ROUNDS]

Prints JSON: per driver, the median and max seconds of `apply_wan` (login, dialogue,
save, fresh-session read-back) and of one `read_wan`. Traffic stays on loopback.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

from router_drivers import RouterSettings, Secret, WanConfig, create_driver
from router_drivers.emulator import EmulatorOptions, run_emulator
from router_drivers.emulator.state import Console

PRIMARY = WanConfig.parse("203.0.113.2", "255.255.255.248", "203.0.113.1")
BACKUP = WanConfig.parse("198.51.100.10", "255.255.255.248", "198.51.100.9")
PASSWORD = "bench-password"


async def bench(console: Console, driver_name: str, rounds: int) -> dict[str, Any]:
    options = EmulatorOptions(password=PASSWORD)
    async with run_emulator(console, PRIMARY, options=options) as (host, port, _):
        driver = create_driver(driver_name, RouterSettings(host=host, port=port,
                                                           password=Secret(PASSWORD)))
        applies: list[float] = []
        for _ in range(rounds):
            for target in (BACKUP, PRIMARY):
                start = time.monotonic()
                await driver.apply_wan(target)
                applies.append(time.monotonic() - start)
        start = time.monotonic()
        await driver.read_wan()
        read = time.monotonic() - start
    return {"driver": driver_name, "applies": len(applies),
            "apply_median_s": round(statistics.median(applies), 3),
            "apply_max_s": round(max(applies), 3), "read_s": round(read, 3)}


async def main(rounds: int) -> None:
    results = [await bench("menu", "netopia-menu", rounds),
               await bench("cli", "netopia-cli", rounds)]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
