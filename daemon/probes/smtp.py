"""SMTP probe on asyncio streams: 220 banner, 250 to EHLO, QUIT, each step timed.

The result says which step failed and what was seen, so an alarm reads like
"ehlo: 554 go away" rather than "SMTP failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

MAX_LINE = 2048        # a longer line is garbage, not SMTP
MAX_EHLO_LINES = 100   # multi-line EHLO answers are short; more is a broken peer


@dataclass(frozen=True, slots=True)
class SmtpResult:
    ok: bool
    step: str            # "connect" | "banner" | "ehlo" | "quit" | "done"
    detail: str          # what was seen (a reply line or the error)
    rtt_ms: float | None = None


class _Bad(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(detail)
        self.step = step
        self.detail = detail


async def _reply(reader: asyncio.StreamReader, step: str, timeout: float) -> tuple[int, str]:
    """Read one (possibly multi-line) SMTP reply under `timeout`: (code, last line)."""
    lines = 0
    async with asyncio.timeout(timeout):
        while True:
            raw = await reader.readline()
            if not raw:
                raise _Bad(step, "connection closed")
            if len(raw) > MAX_LINE or not raw.endswith(b"\n"):
                raise _Bad(step, f"garbage: {raw[:60]!r}")
            line = raw.decode("ascii", errors="replace").rstrip("\r\n")
            code = line[:3]
            if not code.isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise _Bad(step, f"not an SMTP reply: {line[:80]!r}")
            lines += 1
            if lines > MAX_EHLO_LINES:
                raise _Bad(step, "endless reply")
            if len(line) == 3 or line[3] == " ":
                return int(code), line


async def smtp_probe(host: str, port: int, *, timeout: float,
                     ehlo_name: str = "dslfailover.invalid") -> SmtpResult:
    """`timeout` bounds each step separately: connect, banner, EHLO, QUIT."""
    started = time.monotonic()
    step = "connect"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE * 2)
        step = "banner"
        code, line = await _reply(reader, step, timeout)
        if code != 220:
            return SmtpResult(False, step, line)
        step = "ehlo"
        writer.write(f"EHLO {ehlo_name}\r\n".encode("ascii"))
        code, line = await _reply(reader, step, timeout)
        if code != 250:
            return SmtpResult(False, step, line)
        rtt = (time.monotonic() - started) * 1000.0
        step = "quit"
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(_Bad, TimeoutError, OSError):
            await _reply(reader, step, timeout)  # a sloppy QUIT is not a failure
        return SmtpResult(True, "done", line, rtt)
    except _Bad as exc:
        return SmtpResult(False, exc.step, exc.detail)
    except TimeoutError:
        return SmtpResult(False, step, f"no answer within {timeout:g}s")
    except (OSError, ValueError) as exc:  # ValueError: line over the stream limit
        return SmtpResult(False, step, f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
