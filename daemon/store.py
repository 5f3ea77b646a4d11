"""Persisted history in the StateDirectory: atomic JSON, never the truth about the router.

On start the router is read and is the truth (DESIGN §4); this file only supplies
history: the event sequence number (so `seq` keeps increasing across restarts), the last
transition, counters, recent failback times (the flap hold-down survives a restart) and
the intent of a router action in flight. An intent still present at start means we died
mid-action: it is reported, and the router read decides where we are.

Writes are atomic (temp file, fsync, rename, fsync dir). A full or read-only disk is
logged once and the daemon keeps running on its in-memory copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("dslfailover.store")

STATE_FILE = "state.json"


@dataclass
class Persisted:
    seq: int = 0
    last_state: str | None = None
    last_reason: str | None = None
    last_at: str | None = None
    failovers: int = 0
    failbacks: int = 0
    failback_times: list[float] = field(default_factory=list)  # wall clock, for flapping
    # actions in flight by slot ("router", "mx"): {"what": ..., "at": ...}
    intent: dict[str, dict[str, Any]] | None = None


class Store:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        self.data = Persisted()
        self._failing = False

    def load(self) -> Persisted:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self.data
        except (OSError, ValueError) as exc:
            # keep the damaged file for a human; start with empty history
            log.warning("state file unreadable, starting without history",
                        path=str(self.path), error=str(exc))
            with contextlib.suppress(OSError):
                self.path.rename(self.path.with_suffix(".damaged"))
            return self.data
        if not isinstance(raw, dict):
            log.warning("state file is not a JSON object; ignored", path=str(self.path))
            return self.data
        known = {k: v for k, v in raw.items() if k in Persisted.__dataclass_fields__}
        intent = known.get("intent")
        if intent is not None and not (isinstance(intent, dict) and all(
                isinstance(v, dict) for v in intent.values())):
            log.warning("state file: unreadable intent kept out", intent=repr(intent)[:200])
            known["intent"] = {"unknown": {"what": repr(intent)[:200]}}
        try:
            self.data = Persisted(**known)
        except TypeError as exc:
            log.warning("state file has unexpected content", path=str(self.path),
                        error=str(exc))
        return self.data

    def save(self) -> bool:
        text = json.dumps(asdict(self.data), indent=1, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            if not self._failing:
                log.error("cannot persist state; running on memory", path=str(self.path),
                          error=exc.strerror or str(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("state persisted again", path=str(self.path))
        self._failing = False
        return True
