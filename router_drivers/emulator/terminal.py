"""The emulator's side of a telnet session: fragmented output, keys, lines, hanging."""

from __future__ import annotations

import asyncio
import random

import telnetlib3


class Hang(Exception):
    """Raised to unwind a console after it has stopped answering."""


class Terminal:
    def __init__(self, reader: telnetlib3.TelnetReaderUnicode,
                 writer: telnetlib3.TelnetWriterUnicode, *, fragment: bool, seed: int) -> None:
        self.reader = reader
        self.writer = writer
        self.fragment = fragment
        self._random = random.Random(seed)
        self._pending = ""  # a character read ahead while parsing keys
        self._after_cr = False  # the last character read was CR: drop a following LF/NUL

    async def write(self, text: str) -> None:
        """Send `text`, in a few random pieces with a pause between when fragmenting."""
        if not self.fragment or len(text) < 8:
            self.writer.write(text)
            await self.writer.drain()
            return
        cuts = sorted(self._random.sample(range(1, len(text)), k=min(3, len(text) - 1)))
        start = 0
        for cut in [*cuts, len(text)]:
            self.writer.write(text[start:cut])
            await self.writer.drain()
            await asyncio.sleep(0.002)
            start = cut

    async def char(self) -> str:
        """One character; '' at the end of the connection. CR LF and CR NUL read as CR."""
        if self._pending:
            ch, self._pending = self._pending, ""
            return ch
        while True:
            ch = str(await self.reader.read(1))
            after_cr, self._after_cr = self._after_cr, ch == "\r"
            if not (after_cr and ch in ("\n", "\x00")):
                return ch

    async def key(self) -> str:
        """One key: a character, or an escape sequence such as '\\x1b[B'."""
        ch = await self.char()
        if ch != "\x1b":
            return ch
        try:
            async with asyncio.timeout(0.05):
                nxt = await self.char()
        except TimeoutError:
            return "\x1b"
        if nxt not in ("[", "O"):
            self._pending = nxt
            return "\x1b"
        final = await self.char()
        return "\x1b[" + final

    async def line(self, *, echo: bool = True) -> str | None:
        """A line up to CR or LF; None at the end of the connection."""
        buf: list[str] = []
        while True:
            ch = await self.char()
            if ch == "":
                return None
            if ch in ("\r", "\n"):
                if echo:
                    await self.write("\r\n")
                return "".join(buf)
            if ch in ("\x7f", "\x08"):
                if buf:
                    buf.pop()
                    if echo:
                        await self.write("\x08 \x08")
                continue
            if ch == "\x00" or (ch < " " and ch != "\t"):
                continue
            buf.append(ch)
            if echo:
                self.writer.write(ch)

    async def hang(self) -> None:
        """Stop answering: read and drop everything until the client gives up."""
        while await self.char():
            pass
        raise Hang
