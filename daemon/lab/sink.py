"""An SMTP sink standing in for our mail server: aiosmtpd in the caller's event loop.

It records every message it accepts (with the monotonic time it arrived), and can be
taken down (connections refused) or set to refuse mail with a 4xx, so tests can make the
backup MX queue mail and then watch it arrive.

    async with SmtpSink.started() as sink:
        ...; await sink.wait_for(1, timeout=10)
"""

from __future__ import annotations

import asyncio
import time
import weakref
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session

from .launcher import free_port, running


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    at: float        # time.monotonic() when the sink accepted it


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self._sink.refuse:
            return "451 4.3.0 sink told to refuse mail for now"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self._sink.record(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos),
                                   content, time.monotonic()))
        return "250 2.0.0 accepted by the sink"


class SmtpSink:
    """Our mail server in tests: accepts (or refuses) mail and keeps what it accepted."""

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 hostname: str = "mail.sink.test") -> None:
        self.host = host
        self.port = port or free_port(host)
        # must differ from the backup MX's myhostname, or Postfix sees a mail loop
        self.hostname = hostname
        self.received: list[Received] = []
        self.refuse = False
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @classmethod
    def started(cls, **kwargs: Any) -> AbstractAsyncContextManager[Self]:
        """A sink listening for the duration of an `async with` block."""
        return running(cls(**kwargs))

    def record(self, msg: Received) -> None:
        self.received.append(msg)
        self._changed.set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on the same port."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, self.host, self.port,
                                                reuse_address=True)

    def _session(self) -> SMTP:
        session = SMTP(_Handler(self), hostname=self.hostname, ident="dslfailover sink")
        self._sessions.add(session)
        return session

    async def stop(self) -> None:
        """Go down: new connections are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for session in list(self._sessions):   # drop sessions still open too
                if session.transport is not None:
                    session.transport.close()
            await server.wait_closed()

    async def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until at least `count` messages arrived; TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()
        return list(self.received)
