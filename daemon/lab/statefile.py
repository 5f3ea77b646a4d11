"""The lab's record of what it made: `/run/dslfailover-lab/<id>.json`.

`Lab.up()` writes the record *before* it creates anything and keeps it current (the
namespaces, the links, every process it spawned, the circuit controls' settings), so
`Lab.down()` can remove a lab after a crash, and `lab status` can say what the operator
set. Each write replaces the file atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .netns import LabError

Record = dict[str, Any]


class StateFile:
    """One lab's record, in memory and on disk."""

    def __init__(self, path: Path, lab_id: str) -> None:
        self.path = path
        self.lab_id = lab_id
        self.data: Record = {}

    def load(self) -> Record:
        """The record on disk ({} when there is none); does not keep it."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.path}: unreadable lab state: {exc}") from exc
        if not isinstance(data, dict):
            raise LabError(f"{self.path}: lab state is not a JSON object")
        return data

    def known(self) -> Record:
        """The record held in memory, else the one on disk ({} when there is none)."""
        return self.data or self.load()

    def current(self) -> Record:
        """The record of a lab that is up (loaded from disk once); `LabError` if none."""
        if not self.data:
            self.data = self.load()
        if not self.data:
            raise LabError(f"lab {self.lab_id!r} is not up (no {self.path})")
        return self.data

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def update(self, **changes: Any) -> None:
        """Set keys in the record of a lab that is up, and write it."""
        self.current().update(changes)
        self.save()
