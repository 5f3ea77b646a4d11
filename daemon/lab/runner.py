"""The daemon inside a lab: start it in the `inside` namespace, follow what it says, talk
to it over its control socket, stop it. Used by the demo, the lab tests and the benches.

What the daemon audits (transitions, alarms, actions, commands) is read back from its
JSON log lines, in order, with their `seq`; its state comes from the control socket (a
unix socket: reachable from the root namespace through the file system).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..control import ControlError, request
from .site import Lab, SpawnedProcess

# Bounds one control-socket exchange with the daemon in the lab.
CONTROL_TIMEOUT = 5.0


def override_toml(text: str, overrides: Mapping[str, Mapping[str, Any]]) -> str:
    """Set `key = value` in `[section]` of a flat TOML text (replace, or add the key,
    or add the section). Values are written as JSON, which TOML reads for strings,
    numbers, booleans and lists of those."""
    lines = text.splitlines()
    for section, values in overrides.items():
        header = f"[{section}]"
        if header not in (line.strip() for line in lines):
            lines += ["", header]
        start = next(i for i, line in enumerate(lines) if line.strip() == header)
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].lstrip().startswith("[")), len(lines))
        for key, value in values.items():
            rendered = f"{key} = {json.dumps(value)}"
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            hit = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
            if hit is None:
                lines.insert(start + 1, rendered)
                end += 1
            else:
                lines[hit] = rendered
    return "\n".join(lines) + "\n"


class DaemonInLab:
    def __init__(self, lab: Lab, *, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 name: str = "daemon") -> None:
        self.lab = lab
        self.name = name
        self.config = lab.dir / f"{name}.toml"
        self.config.write_text(override_toml(lab.config_path.read_text(), overrides or {}))
        self.proc: SpawnedProcess | None = None
        self._offset = 0
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

    def read(self) -> list[dict[str, Any]]:
        """New log lines since the last call; audit events are also kept in `events`."""
        path = self.lab.dir / f"{self.name}.log"
        try:
            with path.open("rb") as fh:
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
            if not isinstance(line, dict):
                continue
            new.append(line)
            if "event_kind" in line:
                self.events.append(line)
        self.lines += new
        return new

    async def status(self) -> dict[str, Any]:
        answer = await request(self.socket, {"op": "status"}, timeout=CONTROL_TIMEOUT)
        return dict(answer.get("status") or {})

    async def command(self, action: str, reason: str) -> dict[str, Any]:
        return await request(self.socket, {"op": "command", "action": action,
                                           "reason": reason}, timeout=CONTROL_TIMEOUT)

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float,
                   what: str) -> dict[str, Any]:
        """Poll the status until `pred` holds; a clear error with the last status if not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: dict[str, Any] = {}
        while loop.time() < deadline:
            try:
                last = await self.status()
                if pred(last):
                    return last
            except ControlError:
                pass
            await asyncio.sleep(0.05)
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
