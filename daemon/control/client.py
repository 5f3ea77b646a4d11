"""The control socket's client: one request, one answer, every failure a `ControlError`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from .commands import excerpt
from .protocol import (
    EXCERPT_CHARS,
    MAX_RESPONSE_BYTES,
    ControlPermissionError,
    ControlProtocolError,
    ControlTimeout,
    ControlUnavailable,
)


async def request(path: Path, message: dict[str, Any], *,
                  timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to the daemon's control socket and return its answer.

    `timeout` bounds the whole exchange (connect, send, answer). Raises a `ControlError`:
    `ControlUnavailable` when no daemon is listening, `ControlPermissionError`,
    `ControlTimeout`, or `ControlProtocolError` for an answer that is not a JSON object.
    """
    line = json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(
                str(path), limit=MAX_RESPONSE_BYTES)
            try:
                writer.write(line)
                await writer.drain()
                answer = await reader.readuntil(b"\n")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlUnavailable(
            f"no daemon is listening on {path} ({exc.strerror or exc}); is "
            "`dslfailover run` running, and is [control].socket the same?") from None
    except PermissionError:
        raise ControlPermissionError(
            f"permission denied on {path}: run as root or as a member of the socket's "
            "group ([control].group)") from None
    except TimeoutError:
        raise ControlTimeout(f"the daemon on {path} did not answer within {timeout:g}s") \
            from None
    except asyncio.IncompleteReadError as exc:
        raise ControlProtocolError(
            f"the daemon on {path} closed the connection without a complete answer "
            f"(got {excerpt(exc.partial, EXCERPT_CHARS)!r})") from None
    except asyncio.LimitOverrunError:
        raise ControlProtocolError(
            f"the daemon's answer on {path} is longer than {MAX_RESPONSE_BYTES} bytes") \
            from None
    except OSError as exc:
        raise ControlUnavailable(f"cannot talk to the daemon on {path}: "
                                 f"{exc.strerror or exc}") from None
    try:
        data = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlProtocolError(f"the daemon's answer on {path} is not JSON: "
                                   f"{excerpt(answer, EXCERPT_CHARS)!r}") from None
    if not isinstance(data, dict):
        raise ControlProtocolError(f"the daemon's answer on {path} is not a JSON object: "
                                   f"{excerpt(answer, EXCERPT_CHARS)!r}")
    return data
