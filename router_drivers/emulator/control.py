"""A control socket for a running emulator (and the lab's other programs): one JSON
request line in, one JSON answer line out, then the connection closes (the daemon's
control socket speaks the same, so `daemon.control.request` is the client).

The emulator's requests, for the lab's chaos soak (`daemon/lab/chaos*.py`):

    {"op": "state"}                          -> {"ok": true, "state": RouterState.observed()}
    {"op": "fault", "refuse": bool, "hang": bool, "restart_delay": seconds}
                                             -> the same, after the change (each key optional)

`refuse` turns the telnet service off (connections refused), `hang` makes every new
session stop answering after its login, `restart_delay` is how long the next restarts
keep the router away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .server import Emulator

# Longest request line a control socket reads.
MAX_REQUEST = 4096
# Bounds reading one request and writing its answer.
CONTROL_IO_TIMEOUT = 5.0

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def serve_json_lines(path: Path, handle: Handler) -> asyncio.Server:
    """Serve `handle` on a unix socket at `path` (one request per connection). A request
    that is not a JSON object, or that `handle` refuses with ValueError, is answered
    `{"ok": false, "error": ...}`, and so is one whose handling fails (RuntimeError,
    OSError: a program that would not start)."""
    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(CONTROL_IO_TIMEOUT):
                raw = await reader.readline()
                try:
                    request = json.loads(raw[:MAX_REQUEST])
                    if not isinstance(request, dict):
                        raise ValueError("the request is not a JSON object")
                    answer = {"ok": True, **await handle(request)}
                except (ValueError, RuntimeError, OSError) as exc:
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    path.unlink(missing_ok=True)  # noqa: ASYNC240 (a stale socket file: instant)
    return await asyncio.start_unix_server(one, str(path), limit=MAX_REQUEST)


def emulator_handler(emulator: Emulator) -> Handler:
    """The emulator's control requests (see the module's docstring)."""
    state = emulator.state

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "fault":
            if "refuse" in request:
                await emulator.set_refusing(bool(request["refuse"]))
            if "hang" in request:
                state.options.hang_at = "login" if request["hang"] else None
            if "restart_delay" in request:
                delay = float(request["restart_delay"])
                if not 0 <= delay <= 600:
                    raise ValueError(f"restart_delay {delay:g}: use 0..600 seconds")
                state.options.restart_delay = delay
        elif op != "state":
            raise ValueError(f"op: use state or fault (got {op!r:.40})")
        return {"state": state.observed()}

    return handle
