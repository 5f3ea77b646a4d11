"""The mail_path check: an SMTP greeting exchange over any byte stream pair.

BackupMx opens the stream through SSH direct-tcpip, so the TCP connection starts on the
backup MX (as its Postfix would), not here. Each step has its own deadline and the
detail names the step and what was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from .types import Check

# An SMTP reply may have continuation lines (`250-...`); more than this is not a server.
MAX_REPLY_LINES = 64


class ByteReader(Protocol):
    async def readline(self) -> bytes: ...


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...


class _StepFailed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def _reply(reader: ByteReader, step: str, timeout: float) -> tuple[int, str]:
    seen: list[str] = []
    try:
        # bounds the whole reply of one step, not each line
        async with asyncio.timeout(timeout):
            while len(seen) < MAX_REPLY_LINES:
                raw = await reader.readline()
                if not raw:
                    raise _StepFailed(f"{step}: connection closed"
                                      + (f" after {seen[-1]!r}" if seen else " before any reply"))
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                seen.append(line)
                if len(line) < 3 or not line[:3].isdigit():
                    raise _StepFailed(f"{step}: not an SMTP reply: {line[:200]!r}")
                if len(line) == 3 or line[3] == " ":
                    return int(line[:3]), "\n".join(seen)
    except TimeoutError:
        got = f"; seen {seen[-1][:200]!r}" if seen else "; nothing seen"
        raise _StepFailed(f"{step}: no complete reply within {timeout:g}s{got}") from None
    raise _StepFailed(f"{step}: reply longer than {MAX_REPLY_LINES} lines")


async def smtp_greeting(reader: ByteReader, writer: ByteWriter, *, target: str,
                        helo: str, timeout: float) -> Check:
    """220 banner, 250 to EHLO, then QUIT. Never raises for what the server does."""
    try:
        code, text = await _reply(reader, "banner", timeout)
        if code != 220:
            return Check("mail_path", False, f"{target}: banner: expected 220, got {text!r}")
        banner = text.splitlines()[0]
        writer.write(f"EHLO {helo}\r\n".encode())
        code, text = await _reply(reader, "EHLO", timeout)
        if code != 250:
            return Check("mail_path", False, f"{target}: EHLO: expected 250, got {text!r}")
        writer.write(b"QUIT\r\n")
        # the verdict is already in; a server that hangs up on QUIT is fine
        with contextlib.suppress(_StepFailed):
            await _reply(reader, "QUIT", timeout)
        return Check("mail_path", True, f"{target}: {banner[:120]!r}, EHLO accepted")
    except _StepFailed as exc:
        return Check("mail_path", False, f"{target}: {exc.detail}")
