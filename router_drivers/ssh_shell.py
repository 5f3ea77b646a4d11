"""An interactive shell over SSH as a dialogue channel, for routers without exec.

Some router CLIs over SSH (EdgeOS/VyOS operational mode, many vendor shells) only offer
an interactive session with a prompt. `SshShell` opens one on a pseudo-terminal and gives
`TextDialogue` the same send / wait-under-a-deadline interface as a telnet session.
"""

from __future__ import annotations

import asyncio

import asyncssh

from .errors import RouterConnectError, RouterTimeout
from .telnet import ChunkReader
from .transcript import Transcript

# The pseudo-terminal asked for: wide, so that long lines are not wrapped by the router.
TERM_TYPE, TERM_SIZE = "dumb", (200, 50)


class SshShell(ChunkReader):
    """A shell on a pseudo-terminal: `send` and `next_chunk` as a telnet session's."""

    _lost = (OSError, asyncssh.Error)
    _closed = "the router closed the shell"

    def __init__(self, conn: asyncssh.SSHClientConnection, *, step_timeout: float,
                 transcript: Transcript) -> None:
        self.conn = conn
        self.step_timeout = step_timeout
        self.transcript = transcript
        self.recent = ""
        self._process: asyncssh.SSHClientProcess[str] | None = None

    async def open(self) -> None:
        try:
            async with asyncio.timeout(self.step_timeout):
                self._process = await self.conn.create_process(
                    term_type=TERM_TYPE, term_size=TERM_SIZE, encoding="utf-8",
                    errors="replace")
        except TimeoutError as exc:
            raise RouterTimeout("open shell", f"no shell within {self.step_timeout}s") from exc
        except (OSError, asyncssh.Error) as exc:
            raise RouterConnectError("open shell", f"the router refused a shell: {exc}"
                                     ) from exc

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None

    def send(self, text: str, shown: str | None = None) -> None:
        if self._process is None:
            raise RouterConnectError("send", "no shell open")
        self.transcript.sent(shown if shown is not None else text.rstrip("\r\n"))
        self._process.stdin.write(text)

    async def _read(self, step: str) -> str:
        if self._process is None:
            raise RouterConnectError(step, "no shell open")
        return await self._process.stdout.read(4096)
