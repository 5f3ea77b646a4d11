"""What a process holds, read from /proc: resident memory, open file descriptors,
threads, and (for the calling process) its asyncio tasks. The control socket's status
reports the daemon's own; the leak, rest and chaos benches read the same figures."""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Resources:
    rss_kb: int
    open_fds: int
    threads: int
    tasks: int | None   # asyncio tasks: known only for the calling process's own loop

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status_kb(pid: int | str, field: str = "VmRSS") -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, RssAnon, RssFile, …)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status: no {field} line")


def of_process(pid: int | str) -> Resources:
    """Another process's figures (no tasks: those live in its own loop)."""
    return Resources(status_kb(pid), len(os.listdir(f"/proc/{pid}/fd")),
                     len(os.listdir(f"/proc/{pid}/task")), None)


def of_self() -> Resources:
    """This process's figures, its running loop's tasks included (call it from the loop)."""
    other = of_process("self")
    return Resources(other.rss_kb, other.open_fds, other.threads, len(asyncio.all_tasks()))
