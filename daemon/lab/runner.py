"""The daemon inside a lab: start it in the `inside` namespace, follow what it says, talk
to it over its control socket, stop it. Used by the demo, the lab tests and the benches.

What the daemon audits (transitions, alarms, actions, commands) is read back from its
JSON log lines, in order, with their `seq`; its state comes from the control socket (a
unix socket: reachable from the root namespace through the file system).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..control import ControlError, request
from . import netns
from .labconfig import read_toml, with_overrides, write_toml
from .poll import poll
from .site import Lab, SpawnedProcess

# Bounds one control-socket exchange with the daemon in the lab.
CONTROL_TIMEOUT = 5.0

Status = dict[str, Any]


def epoch(stamp: object) -> float | None:
    """An audit event's ISO UTC timestamp as epoch seconds (None if it has none)."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def read_status(socket: Path, timeout: float = CONTROL_TIMEOUT) -> Status:
    """The daemon's status, asked over its control socket."""
    answer = await request(socket, {"op": "status"}, timeout=timeout)
    return dict(answer.get("status") or {})


async def wait_status(socket: Path, pred: Callable[[Status], bool], timeout: float,
                      *, step: float = 0.05) -> tuple[bool, Status]:
    """Poll the daemon's status until `pred` holds: (whether it did within `timeout`
    seconds, the last status read). A daemon that does not answer yet (not started,
    socket not bound) is asked again."""
    last: Status = {}

    async def holds() -> bool:
        nonlocal last
        try:
            last = await read_status(socket)
        except ControlError:
            return False
        return pred(last)

    return await poll(holds, timeout, step=step), last


class JsonLinesTail:
    """A JSON-lines file another process appends to, read as it grows: whole lines only;
    a line that is not JSON is kept as `{"event": text, "level": "raw"}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def read(self) -> list[dict[str, Any]]:
        """The JSON objects appended since the last call."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines
        self._offset += end
        new = []
        for raw in data[:end].splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": raw.decode(errors="replace"), "level": "raw"}
            if isinstance(line, dict):
                new.append(line)
        return new


class DaemonInLab:
    """One daemon process in the lab's `inside` namespace, with the lab config (plus
    `overrides`, per table) written to `<lab dir>/<name>.toml`."""

    def __init__(self, lab: Lab, *, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 name: str = "daemon") -> None:
        self.lab = lab
        self.name = name
        self.config = lab.dir / f"{name}.toml"
        write_toml(self.config, with_overrides(read_toml(lab.config_path), overrides or {}))
        self.proc: SpawnedProcess | None = None
        self._log = JsonLinesTail(lab.dir / f"{name}.log")
        self.events: list[dict[str, Any]] = []   # audit events, in order
        self.lines: list[dict[str, Any]] = []    # every JSON log line

    @property
    def socket(self) -> Path:
        return self.lab.paths.control_socket

    async def start(self) -> None:
        self.proc = await self.lab.spawn("inside", [
            sys.executable, "-m", "daemon.cli", "run", "-c", str(self.config),
            "--log-format", "json"], name=self.name)

    async def stop(self) -> None:
        if self.proc is not None:
            await self.lab.stop(self.proc)
            self.proc = None
        self.read()

    @property
    def alive(self) -> bool:
        """Whether the daemon process runs (False once it has exited, or before start)."""
        return self.proc is not None and netns.pid_alive(self.proc.pid)

    def exit_status(self) -> int | None:
        """The daemon's exit status once it has exited (None while it runs)."""
        return None if self.proc is None else self.lab.exit_status(self.proc)

    async def send_signal(self, sig: signal.Signals, timeout: float) -> tuple[int | None, float]:
        """Send `sig` to the daemon and wait up to `timeout` seconds for it to exit:
        (its exit status, or None if it had to be stopped hard; seconds it took)."""
        assert self.proc is not None
        proc, started = self.proc, time.monotonic()
        os.kill(proc.pid, sig)   # `ip netns exec` execs in place: this is the daemon
        # Reaped, not merely "not alive": a process whose threads are still being torn
        # down shows its leader as a zombie that waitpid cannot collect yet.
        await poll(lambda: self.lab.exit_status(proc) is not None, timeout)
        took = time.monotonic() - started
        status = self.lab.exit_status(proc)
        await self.stop()   # forgets it (and stops it hard if it still runs)
        return status, took

    def read(self) -> list[dict[str, Any]]:
        """New log lines since the last call; audit events are also kept in `events`."""
        new = self._log.read()
        self.events += [line for line in new if "event_kind" in line]
        self.lines += new
        return new

    async def status(self) -> Status:
        return await read_status(self.socket)

    async def command(self, action: str, reason: str) -> dict[str, Any]:
        return await request(self.socket, {"op": "command", "action": action,
                                           "reason": reason}, timeout=CONTROL_TIMEOUT)

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float,
                   what: str) -> dict[str, Any]:
        """Poll the status until `pred` holds; a clear error with the last status if not."""
        held, last = await wait_status(self.socket, pred, timeout)
        if held:
            return last
        self.read()
        tail = [f"{e.get('seq')} {e.get('event_kind')}: {e.get('event')}"
                for e in self.events[-8:]]
        raise TimeoutError(f"{what}: not within {timeout:g}s; state "
                           f"{last.get('state')!r} ({last.get('reason')!r}); last events "
                           f"{tail}")

    async def wait_state(self, state: str, timeout: float = 30.0) -> dict[str, Any]:
        return await self.wait(lambda s: s.get("state") == state, timeout, f"state {state}")

    def transitions(self) -> list[tuple[str, str]]:
        self.read()
        return [(str(e.get("state_from")), str(e.get("state_to"))) for e in self.events
                if e.get("event_kind") == "transition"]
