"""The SMTP greeting over any byte stream pair, and the mail_path check built on it.

`greet` reads the 220 banner and the 250 answer to EHLO (`read_banner`, then `ehlo`), and
`quit_session` ends the session politely;
both take a (reader, writer) pair, so one implementation serves a TCP connection (the
daemon's SMTP probe) and an SSH direct-tcpip channel (`mail_path`: BackupMx opens the
stream through SSH, so the TCP connection starts on the backup MX, as its Postfix would,
not here). Each step has its own deadline; a failure is a `GreetingFailed` that names the
step and what was seen, and each caller words it for its own report.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal, Protocol

from .types import Check

# An SMTP reply may have continuation lines (`250-...`); more than this is not a server.
MAX_REPLY_LINES = 100
# A longer line is garbage, not SMTP.
MAX_LINE = 2048

Step = Literal["banner", "ehlo", "quit"]
Failure = Literal["closed", "garbage", "not_smtp", "endless", "timeout", "code"]


class ByteReader(Protocol):
    async def readline(self) -> bytes: ...


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...


class GreetingFailed(Exception):
    """One step of the greeting went wrong: how (`failure`), and the reply lines seen.

    `seen` holds the lines of this step's reply read so far (for `code`: the whole reply,
    whose code was not the expected one); `raw` the offending line for `garbage`.
    """

    def __init__(self, step: Step, failure: Failure, seen: tuple[str, ...] = (),
                 raw: bytes = b"") -> None:
        super().__init__(f"{step}: {failure}")
        self.step: Step = step
        self.failure: Failure = failure
        self.seen = seen
        self.raw = raw


@dataclass(frozen=True, slots=True)
class Greeting:
    """A server that greeted: its banner and its EHLO reply, each line by line."""

    banner: tuple[str, ...]
    ehlo: tuple[str, ...]


async def _reply(reader: ByteReader, step: Step, timeout: float) -> tuple[int, tuple[str, ...]]:
    """Read one (possibly multi-line) SMTP reply under `timeout`: (code, its lines)."""
    seen: list[str] = []
    try:
        # bounds the whole reply of one step, not each line
        async with asyncio.timeout(timeout):
            while len(seen) < MAX_REPLY_LINES:
                raw = await reader.readline()
                if not raw:
                    raise GreetingFailed(step, "closed", tuple(seen))
                if len(raw) > MAX_LINE or not raw.endswith(b"\n"):
                    raise GreetingFailed(step, "garbage", tuple(seen), raw)
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                seen.append(line)
                code = line[:3]
                if not code.isdigit() or (len(line) > 3 and line[3] not in " -"):
                    raise GreetingFailed(step, "not_smtp", tuple(seen), raw)
                if len(line) == 3 or line[3] == " ":
                    return int(code), tuple(seen)
    except TimeoutError:
        raise GreetingFailed(step, "timeout", tuple(seen)) from None
    raise GreetingFailed(step, "endless", tuple(seen))


async def read_banner(reader: ByteReader, *, timeout: float) -> tuple[str, ...]:
    """The 220 banner's lines; `timeout` bounds the reply. Else GreetingFailed."""
    code, banner = await _reply(reader, "banner", timeout)
    if code != 220:
        raise GreetingFailed("banner", "code", banner)
    return banner


async def ehlo(reader: ByteReader, writer: ByteWriter, *, helo: str,
               timeout: float) -> tuple[str, ...]:
    """`EHLO helo` and its 250 reply's lines; `timeout` bounds the reply. Else GreetingFailed."""
    writer.write(f"EHLO {helo}\r\n".encode())
    code, lines = await _reply(reader, "ehlo", timeout)
    if code != 250:
        raise GreetingFailed("ehlo", "code", lines)
    return lines


async def greet(reader: ByteReader, writer: ByteWriter, *, helo: str,
                timeout: float) -> Greeting:
    """220 banner, then 250 to `EHLO helo`; `timeout` bounds each reply. Else GreetingFailed."""
    banner = await read_banner(reader, timeout=timeout)
    return Greeting(banner, await ehlo(reader, writer, helo=helo, timeout=timeout))


async def quit_session(reader: ByteReader, writer: ByteWriter, *, timeout: float) -> None:
    """QUIT and wait up to `timeout` for the reply; the verdict is in, so nothing fails."""
    writer.write(b"QUIT\r\n")
    # a server that hangs up on QUIT, or answers it sloppily, is fine
    with contextlib.suppress(GreetingFailed, OSError):
        await _reply(reader, "quit", timeout)


_STEP_NAMES = {"banner": "banner", "ehlo": "EHLO", "quit": "QUIT"}
_EXPECTED = {"banner": 220, "ehlo": 250}


def _mail_path_detail(exc: GreetingFailed, timeout: float) -> str:
    step = _STEP_NAMES[exc.step]
    last = exc.seen[-1] if exc.seen else ""
    if exc.failure == "code":
        text = "\n".join(exc.seen)
        return f"{step}: expected {_EXPECTED[exc.step]}, got {text!r}"
    if exc.failure == "closed":
        return f"{step}: connection closed" + (f" after {last!r}" if exc.seen
                                               else " before any reply")
    if exc.failure == "timeout":
        got = f"; seen {last[:200]!r}" if exc.seen else "; nothing seen"
        return f"{step}: no complete reply within {timeout:g}s{got}"
    if exc.failure == "endless":
        return f"{step}: reply longer than {MAX_REPLY_LINES} lines"
    line = exc.raw.decode("utf-8", "replace").rstrip("\r\n")
    return f"{step}: not an SMTP reply: {line[:200]!r}"


async def smtp_greeting(reader: ByteReader, writer: ByteWriter, *, target: str,
                        helo: str, timeout: float) -> Check:
    """The mail_path check: `greet`, then `quit_session`. Never raises for what the server does."""
    try:
        greeting = await greet(reader, writer, helo=helo, timeout=timeout)
    except GreetingFailed as exc:
        return Check("mail_path", False, f"{target}: {_mail_path_detail(exc, timeout)}")
    await quit_session(reader, writer, timeout=timeout)
    return Check("mail_path", True, f"{target}: {greeting.banner[0][:120]!r}, EHLO accepted")
