"""The emulator as a telnetlib3 server, and `run_emulator()` for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
import telnetlib3

from ..base import WanConfig
from .cli_console import CliConsole
from .menu_console import MenuConsole
from .state import Console, EmulatorOptions, RouterState, WanBackend
from .terminal import Hang, Terminal

log = structlog.get_logger(__name__)

# How long the server lets a client negotiate telnet options before the console starts.
SERVER_NEGOTIATION = 0.5


class Emulator:
    """One emulated router listening on `host:port`. Restartable: it keeps its port."""

    def __init__(self, state: RouterState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._server: telnetlib3.Server | None = None
        self._drain: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        state.restart = self.restart

    async def start(self) -> None:
        self._server = await telnetlib3.create_server(
            self.host, self.port, shell=self._shell, encoding="latin-1", force_binary=True,
            connect_maxwait=SERVER_NEGOTIATION, timeout=False)
        self._drain = asyncio.create_task(_drain(self._server), name="emulator-drain")
        sockets = self._server.sockets or ()
        self.port = int(sockets[0].getsockname()[1])
        log.info("emulator_listening", console=self.state.console, host=self.host,
                 port=self.port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._stop_drain()
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _close(self) -> None:
        if self._server is not None:
            self._stop_drain()
            self._server.close()  # closes the listener and every client transport
            self._server = None

    def _stop_drain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    async def restart(self) -> None:
        """Stop listening and drop every session now; boot (run the saved config) and
        listen again `restart_delay` later."""
        self._close()
        self.state.restarting = True
        task = asyncio.create_task(self._come_back(), name="emulator-restart")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def set_refusing(self, refusing: bool) -> None:
        """Turn the telnet service off (connections refused, a session in progress
        dropped) or on again; a router away in a restart listens once it is back."""
        self.state.refusing = refusing
        if refusing:
            self._close()
        elif self._server is None and not self.state.restarting:
            await self.start()

    async def _come_back(self) -> None:
        loop = asyncio.get_running_loop()
        await self.state.backend.halt()
        await asyncio.sleep(self.state.options.restart_delay)
        booted = loop.time()
        await self.state.boot()
        self.state.restarting = False
        if not self.state.refusing:
            await self.start()
        # the boot (the WAN applied, the lab's tunnel re-key hook) is router time too
        log.info("restarted", away_s=round(self.state.options.restart_delay, 1),
                 boot_s=round(loop.time() - booted, 3), wan=str(self.state.runs))

    async def _shell(self, reader: telnetlib3.TelnetReader | telnetlib3.TelnetReaderUnicode,
                     writer: telnetlib3.TelnetWriter | telnetlib3.TelnetWriterUnicode) -> None:
        # created with an encoding, so telnetlib3 hands us the unicode streams
        assert isinstance(reader, telnetlib3.TelnetReaderUnicode)
        assert isinstance(writer, telnetlib3.TelnetWriterUnicode)
        state = self.state
        state.sessions += 1
        state.overlaps += state.open_sessions > 0
        state.open_sessions += 1
        state.max_open = max(state.max_open, state.open_sessions)
        term = Terminal(reader, writer, fragment=self.state.options.fragment,
                        seed=self.state.sessions)
        console = (MenuConsole(self.state, term) if self.state.console == "menu"
                   else CliConsole(self.state, term))
        try:
            await console.run()
        except (Hang, EOFError, ConnectionError):
            pass
        finally:
            state.open_sessions -= 1
            writer.close()


async def _drain(server: telnetlib3.Server) -> None:
    """Take each session off telnetlib3's queue of new clients as it comes: the server
    keeps the last 1000 there for `wait_for_client()`, which we never call, and each one
    holds its session's protocol, streams and console (~50 KB; a leak bench saw the
    emulator grow by 34 MB over 600 failover/failback cycles)."""
    while True:
        await server.wait_for_client()


@contextlib.asynccontextmanager
async def run_emulator(console: Console, initial: WanConfig, *, host: str = "127.0.0.1",
                       port: int = 0, options: EmulatorOptions | None = None,
                       backend: WanBackend | None = None,
                       ) -> AsyncIterator[tuple[str, int, RouterState]]:
    """Start an emulator in this event loop; yields (host, port, state); always stops it."""
    state = RouterState(console, initial, options or EmulatorOptions())
    if backend is not None:
        state.backend = backend
    emulator = Emulator(state, host, port)
    await emulator.start()
    try:
        yield emulator.host, emulator.port, state
    finally:
        await emulator.stop()
