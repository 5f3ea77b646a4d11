"""The telnet side of the dialogue engine: connect, send, and wait under a deadline.

`TelnetSession` owns one telnetlib3 connection and converts every library error where it
enters (OSError, EOF, TimeoutError) into a `RouterError` that names the step and shows the
masked tail of what was read. `TextDialogue` (line consoles) and `ScreenDialogue`
(`screen.py`, VT100 menus) build on `next_chunk()`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

import telnetlib3

from .base import RouterSettings
from .errors import RouterConnectError, RouterTimeout
from .transcript import Transcript

# How long telnetlib3 lets the server demand options before it hands us the streams.
# A real router negotiates in one round trip; this only bounds a silent one.
NEGOTIATION_MAXWAIT = 1.0
# Bounds closing the connection politely before it is dropped.
CLOSE_TIMEOUT = 2.0
# How much unread text an error message shows (netmiko shows the tail too).
ERROR_TAIL = 600


class Channel(Protocol):
    """What the dialogues need from a session: telnet here, an SSH shell in ssh_shell.py."""

    transcript: Transcript
    step_timeout: float
    recent: str

    def send(self, text: str, shown: str | None = None) -> None: ...

    async def next_chunk(self, step: str, deadline: float, waited: float) -> str: ...

    def deadline(self, timeout: float | None = None) -> float: ...


class ChunkReader:
    """What both sessions share of `Channel`: the next chunk under a deadline, the tail.

    A session gives `_read` (one read, "" at the end) and names what a dropped connection
    raises (`_lost`) and how the end reads (`_closed`); library errors become
    `RouterError`s here, where they enter.
    """

    transcript: Transcript
    step_timeout: float
    recent: str  # masked tail of everything read, for error messages
    _lost: tuple[type[Exception], ...] = (OSError,)
    _closed = "the router closed the connection"

    async def _read(self, step: str) -> str:
        raise NotImplementedError

    async def next_chunk(self, step: str, deadline: float, waited: float) -> str:
        """The next text from the router, or an error once `deadline` (loop time) passes.

        `waited` is the timeout the deadline came from, for the error message.
        """
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await self._read(step)
        except TimeoutError as exc:
            raise RouterTimeout(step, "the router stopped answering "
                                f"(no expected reply within {waited}s)",
                                self.recent) from exc
        except self._lost as exc:
            raise RouterConnectError(step, f"connection lost: {exc}", self.recent) from exc
        if not chunk:
            raise RouterConnectError(step, self._closed, self.recent)
        self.recent = (self.recent + self.transcript.mask(chunk))[-ERROR_TAIL:]
        return chunk

    def deadline(self, timeout: float | None = None) -> float:
        return asyncio.get_running_loop().time() + (
            self.step_timeout if timeout is None else timeout)


class TelnetSession(ChunkReader):
    """One telnet connection to a router. An async context manager; not re-entrant."""

    def __init__(self, host: str, port: int, *, connect_timeout: float, step_timeout: float,
                 transcript: Transcript) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.step_timeout = step_timeout
        self.transcript = transcript
        self._reader: telnetlib3.TelnetReader | telnetlib3.TelnetReaderUnicode | None = None
        self._writer: telnetlib3.TelnetWriter | telnetlib3.TelnetWriterUnicode | None = None
        self.recent = ""  # masked tail of everything read, for error messages

    @classmethod
    def to(cls, settings: RouterSettings, transcript: Transcript) -> TelnetSession:
        """A session to the router of `settings`, with its timeouts."""
        return cls(settings.host, settings.port, connect_timeout=settings.connect_timeout,
                   step_timeout=settings.step_timeout, transcript=transcript)

    async def __aenter__(self) -> TelnetSession:
        await self.connect()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        step = f"connect {self.host}:{self.port}"
        self.transcript.note(step)
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await telnetlib3.open_connection(
                    self.host, self.port, client_factory=telnetlib3.TelnetClient,
                    encoding="latin-1", force_binary=True, connect_minwait=0.0,
                    connect_maxwait=NEGOTIATION_MAXWAIT)
        except TimeoutError as exc:
            raise RouterTimeout(step, f"no telnet session within {self.connect_timeout}s"
                                ) from exc
        except OSError as exc:
            raise RouterConnectError(step, f"cannot connect: {exc.strerror or exc}") from exc
        self._reader, self._writer = reader, writer

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            pass

    def send(self, text: str, shown: str | None = None) -> None:
        """Send `text`; the transcript records `shown` (use it for secrets and keys)."""
        if self._writer is None:
            raise RouterConnectError("send", "not connected")
        self.transcript.sent(shown if shown is not None else text.rstrip("\r\n"))
        if isinstance(self._writer, telnetlib3.TelnetWriterUnicode):
            self._writer.write(text)
        else:
            self._writer.write(text.encode("latin-1"))

    async def _read(self, step: str) -> str:
        if self._reader is None:
            raise RouterConnectError(step, "not connected")
        data = await self._reader.read(4096)
        return data.decode("latin-1") if isinstance(data, bytes) else data


class TextDialogue:
    """Expect-style waiting for line consoles (SOC OS CLI): buffer, search, consume.

    `answers` are questions a console may ask in the middle of any reply (a `--More--`
    paging prompt, "Are you sure (y/n)?"), each with the text that answers it: they are
    answered as they come and cut out of the reply, so a caller only sees its prompt.
    """

    def __init__(self, session: Channel,
                 answers: Mapping[str, tuple[re.Pattern[str], str]] | None = None) -> None:
        self.session = session
        self.answers = dict(answers or {})
        self._buffer = ""

    def _answer(self, shown: int) -> int | None:
        """Answer a question in the buffer; the length of the buffer now in the transcript.

        `shown` is how much of the buffer the transcript already has.
        """
        for name, (pattern, answer) in self.answers.items():
            m = pattern.search(self._buffer, shown)
            if m:
                self.session.transcript.seen(self._buffer[shown:m.end()])
                self._buffer = self._buffer[:m.start()] + self._buffer[m.end():]
                self.session.send(answer, shown=f"<{name}: {answer.strip() or 'space'}>")
                return m.start()
        return None

    async def expect(self, step: str, patterns: Mapping[str, re.Pattern[str]],
                     timeout: float | None = None) -> tuple[str, str]:
        """Wait until one of `patterns` matches; return (its name, the text up to its end).

        The text read is consumed up to the end of the earliest match.
        """
        waited = self.session.step_timeout if timeout is None else timeout
        deadline = self.session.deadline(waited)
        reply = ""  # what was already shown in the transcript while answering questions
        while True:
            best: tuple[int, str, re.Match[str]] | None = None
            for name, pattern in patterns.items():
                m = pattern.search(self._buffer)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), name, m)
            if best is not None:
                _, name, m = best
                text, self._buffer = self._buffer[:m.end()], self._buffer[m.end():]
                self.session.transcript.seen(text[len(reply):])
                return name, text
            answered = self._answer(len(reply))
            if answered is not None:
                reply = self._buffer[:answered]
                continue
            try:
                chunk = await self.session.next_chunk(step, deadline, waited)
            except RouterTimeout as exc:
                self._flush(reply)
                wanted = " or ".join(f"{n} /{p.pattern}/" for n, p in patterns.items())
                raise RouterTimeout(step, f"the router stopped answering: no {wanted} "
                                    f"within {waited:g}s", exc.seen) from exc
            except Exception:
                self._flush(reply)
                raise
            self._buffer += chunk

    def _flush(self, reply: str) -> None:
        if self._buffer[len(reply):]:
            self.session.transcript.seen(self._buffer[len(reply):])
        self._buffer = ""
