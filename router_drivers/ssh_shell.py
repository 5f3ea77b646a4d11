"""An interactive shell over SSH as a dialogue channel, for routers without exec.

Some router CLIs over SSH (EdgeOS/VyOS operational mode, many vendor shells) only offer
an interactive session with a prompt. `SshShell` opens one on a pseudo-terminal and gives
`TextDialogue` the same send / wait-under-a-deadline interface as a telnet session.
"""

from __future__ import annotations

import asyncio

import asyncssh

from .errors import RouterConnectError, RouterTimeout
from .telnet import ERROR_TAIL
from .transcript import Transcript

# The pseudo-terminal asked for: wide, so that long lines are not wrapped by the router.
TERM_TYPE, TERM_SIZE = "dumb", (200, 50)


class SshShell:
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

    async def next_chunk(self, step: str, deadline: float, waited: float) -> str:
        if self._process is None:
            raise RouterConnectError(step, "no shell open")
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await self._process.stdout.read(4096)
        except TimeoutError as exc:
            raise RouterTimeout(step, "the router stopped answering "
                                f"(no expected reply within {waited}s)", self.recent) from exc
        except (OSError, asyncssh.Error) as exc:
            raise RouterConnectError(step, f"connection lost: {exc}", self.recent) from exc
        if not chunk:
            raise RouterConnectError(step, "the router closed the shell", self.recent)
        self.recent = (self.recent + self.transcript.mask(chunk))[-ERROR_TAIL:]
        return chunk

    def deadline(self, timeout: float | None = None) -> float:
        return asyncio.get_running_loop().time() + (
            self.step_timeout if timeout is None else timeout)
