"""SMTP probe on asyncio streams: 220 banner, 250 to EHLO, QUIT, each step timed.

The greeting itself is `postfix_sync.mailpath`'s, the one SMTP greeter (the backup
MX's mail_path check speaks it over SSH); this module opens the TCP connection, times it
and words the result, so an alarm reads like "ehlo: 554 go away" rather than "SMTP failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from postfix_sync.mailpath import MAX_LINE, GreetingFailed, ehlo, quit_session, read_banner


@dataclass(frozen=True, slots=True)
class SmtpResult:
    ok: bool
    step: str            # "connect" | "banner" | "ehlo" | "quit" | "done"
    detail: str          # what was seen (a reply line or the error)
    rtt_ms: float | None = None


def _detail(exc: GreetingFailed, timeout: float) -> str:
    if exc.failure == "code":
        return exc.seen[-1]
    if exc.failure == "closed":
        return "connection closed"
    if exc.failure == "timeout":
        return f"no answer within {timeout:g}s"
    if exc.failure == "endless":
        return "endless reply"
    if exc.failure == "garbage":
        return f"garbage: {exc.raw[:60]!r}"
    return f"not an SMTP reply: {exc.seen[-1][:80]!r}"


async def smtp_probe(host: str, port: int, *, timeout: float,
                     ehlo_name: str) -> SmtpResult:
    """`timeout` bounds each step separately: connect, banner, EHLO, QUIT."""
    started = time.monotonic()
    step = "connect"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE * 2)
        step = "banner"
        await read_banner(reader, timeout=timeout)
        step = "ehlo"
        lines = await ehlo(reader, writer, helo=ehlo_name, timeout=timeout)
        rtt = (time.monotonic() - started) * 1000.0
        step = "quit"
        await quit_session(reader, writer, timeout=timeout)
        return SmtpResult(True, "done", lines[-1], rtt)
    except GreetingFailed as exc:
        return SmtpResult(False, exc.step, _detail(exc, timeout))
    except TimeoutError:
        return SmtpResult(False, step, f"no answer within {timeout:g}s")
    except (OSError, ValueError) as exc:  # ValueError: line over the stream limit
        return SmtpResult(False, step, f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
