"""Programs the lab runs in its namespaces: started, recorded, waited for, stopped.

A spawned program runs in its own process group with its output in
`<lab dir>/<name>.log`, and is recorded in the lab's state file as soon as it exists,
so `Lab.down()` stops it even after this Python process is gone (`lab up` returns at
once and leaves them running).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import netns
from .netns import LabError
from .poll import poll
from .statefile import StateFile

# Bounds `ip netns exec` moving a spawned program into its namespace.
SPAWN_TIMEOUT = 5.0
# Bounds how long a stopping lab process may take after SIGTERM (the services process
# stops Postfix cleanly, which takes a few seconds) before it is killed.
STOP_GRACE = 15.0
_PROCESS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # also its log file's name


def log_tail(path: str, size: int = 1500) -> str:
    """The end of a spawned program's log, for an error message."""
    try:
        text = Path(path).read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return (text[-size:] if len(text) > size else text) or "(empty log)"


@dataclass
class SpawnedProcess:
    """A long-running program the lab started inside one of its namespaces."""

    name: str
    ns: str
    pid: int
    argv: list[str]
    log: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ns": self.ns, "pid": self.pid, "argv": self.argv,
                "log": self.log}


class Spawner:
    """Starts and stops one lab's programs; the state file records each of them."""

    def __init__(self, log_dir: Path, state: StateFile) -> None:
        self.log_dir = log_dir
        self.state = state
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exit_status: dict[int, int] = {}   # children that exited, by pid

    async def spawn(self, ns: str, argv: Sequence[str], *, name: str,
                    env: dict[str, str] | None = None) -> SpawnedProcess:
        """Start `argv` in namespace `ns` (a full name) in its own process group, and
        return once it is inside that namespace."""
        if not _PROCESS_NAME.fullmatch(name):
            raise LabError(f"process name {name!r}: use letters, digits, '.', '_', '-'")
        record = self.state.current()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            try:
                # Popen, not asyncio's subprocess: asyncio kills its children when the
                # loop closes, and these must outlive it (`lab up` returns at once).
                child = subprocess.Popen(  # noqa: ASYNC220
                    netns.in_netns(ns, argv), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True, env=env)
            except OSError as exc:
                raise LabError(f"{name}: cannot start {argv[0]}: {exc.strerror}") from exc
        self._children[child.pid] = child
        proc = SpawnedProcess(name, ns, child.pid, list(argv), str(log))
        record["processes"].append(proc.as_dict())
        self.state.save()
        await self._entered(proc, child)
        return proc

    async def _entered(self, proc: SpawnedProcess, child: subprocess.Popen[bytes]) -> None:
        """Wait until `ip netns exec` has moved the child into its namespace: before that
        neither `down()` nor the namespace sweep would recognise it as the lab's."""
        def inside() -> bool:
            if netns.pid_in_netns(proc.pid, proc.ns):
                return True
            if child.poll() is not None:
                raise LabError(f"{proc.name} exited at once ({child.returncode}): "
                               f"{log_tail(proc.log)}")
            return False

        if not await poll(inside, SPAWN_TIMEOUT, step=0.005):
            await netns.kill_all([proc.pid], groups=True)
            raise LabError(f"{proc.name} did not enter {proc.ns} within {SPAWN_TIMEOUT:g}s")

    async def wait_ready(self, proc: SpawnedProcess, ready: Callable[[], bool],
                         timeout: float, what: str) -> None:
        """Wait until `ready()` holds; `LabError` with the log's tail when the program
        exits first or `timeout` seconds pass."""
        def check() -> bool:
            if ready():
                return True
            if not netns.pid_alive(proc.pid):
                raise LabError(f"{what} exited at start: {log_tail(proc.log)}")
            return False

        if not await poll(check, timeout):
            raise LabError(f"{what} not ready within {timeout:g}s: {log_tail(proc.log)}")

    async def stop(self, proc: SpawnedProcess) -> None:
        """Stop one spawned program (its whole process group) and forget it."""
        await netns.kill_all([proc.pid], groups=True)
        self.reap()
        record = self.state.current()
        record["processes"] = [p for p in record["processes"] if p.get("pid") != proc.pid]
        self.state.save()

    def reap(self) -> None:
        """Collect the exit status of children that have exited (no zombies)."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                self._exit_status[pid] = child.returncode
                del self._children[pid]

    def exit_status(self, pid: int) -> int | None:
        """A child's exit status (negative: the signal that ended it); None while it
        runs, or when it is not a child of this spawner."""
        self.reap()
        return self._exit_status.get(pid)
