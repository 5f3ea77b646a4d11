"""One backup-MX action in a short-lived child process, so that a long-running caller
(the daemon) never holds asyncssh and cryptography: importing them costs ~15 MB of RSS
(and a connection ~2 MB more) that a process cannot give back.

    mx = MxWorker(settings)
    await mx.prepare()          # optional: start the child now (it imports asyncssh)
    report = await mx.verify()  # one request to the child; it answers and exits

The child is `python -m postfix_sync.worker`: it imports `postfix_sync.client` first,
then reads one JSON request line on stdin ({"action", "settings"}), runs the action
with `BackupMx` and writes one JSON answer line on stdout ({"report"} or {"error"}),
then exits. An MxError in the child is raised again here, same class, step and message.
`prepare()` hides the start (~0.2–0.4 s, mostly the import) behind something slow, e.g.
the router's dialogue before the checks that follow a failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import select
import sys
from pathlib import Path
from typing import Any, Literal

from . import errors
from .errors import MxCommandError, MxError
from .types import Check, FlushReport, MxSettings, RepairReport, VerifyReport

Action = Literal["verify", "repair", "flush"]
# A prepared child that gets no request within this many seconds exits by itself (the
# caller starts a new one when it needs one); longer than any router action before it.
PREPARED_IDLE = 900.0
# How much of the child's stderr an error shows.
STDERR_TAIL = 600
# every class of the package's exception tree, by name: an error keeps its class across
# the process boundary
_ERRORS: dict[str, type[MxError]] = {
    name: cls for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, MxError)}
_PATHS = ("key_file", "known_hosts")


def settings_to_json(s: MxSettings) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(s).items()}


def settings_from_json(data: dict[str, Any]) -> MxSettings:
    fields: dict[str, Any] = {k: Path(v) if k in _PATHS else v for k, v in data.items()}
    return MxSettings(**fields)


def _verify_report(data: dict[str, Any]) -> VerifyReport:
    return VerifyReport(tuple(Check(c["name"], c["ok"], c["detail"]) for c in data["checks"]))


def _report(action: Action, data: dict[str, Any]) -> VerifyReport | RepairReport | FlushReport:
    """The report as_dict() wrote, read back into its frozen type."""
    if action == "verify":
        return _verify_report(data)
    if action == "flush":
        return FlushReport(data["command"], data["deferred_before"], data["deferred_after"],
                           data["detail"])
    verify = data.get("verify")
    return RepairReport(data["changed"], data["diff"], tuple(data["backups"]),
                        _verify_report(verify) if verify else None, data["detail"])


class MxWorker:
    """The backup MX's actions, each in a child process of its own. Not re-entrant: the
    daemon runs one MX action at a time."""

    def __init__(self, settings: MxSettings) -> None:
        self.settings = settings
        self._ready: asyncio.subprocess.Process | None = None

    async def prepare(self) -> None:
        """Start the next action's child now, unless one is ready already. Never raises:
        a child that cannot be started now is tried again by the action (its error)."""
        if self._ready is None or self._ready.returncode is not None:
            self._ready = None
            with contextlib.suppress(OSError):
                self._ready = await _spawn()

    async def close(self) -> None:
        """End a prepared child that was not used."""
        proc, self._ready = self._ready, None
        if proc is not None:
            await _ended(proc)

    async def verify(self) -> VerifyReport:
        report = await self._run("verify")
        assert isinstance(report, VerifyReport)
        return report

    async def repair(self) -> RepairReport:
        report = await self._run("repair")
        assert isinstance(report, RepairReport)
        return report

    async def flush(self) -> FlushReport:
        report = await self._run("flush")
        assert isinstance(report, FlushReport)
        return report

    async def _run(self, action: Action) -> VerifyReport | RepairReport | FlushReport:
        proc, self._ready = self._ready, None
        if proc is None or proc.returncode is not None:
            try:
                proc = await _spawn()
            except OSError as exc:
                raise MxCommandError("worker", f"cannot start the {action} child: "
                                     f"{exc}") from None
        request = json.dumps({"action": action, "settings": settings_to_json(self.settings)})
        try:
            # bounded by the caller (the executor's mx_timeout); cancelled: killed below
            out, err = await proc.communicate(request.encode() + b"\n")
        finally:
            await _ended(proc)
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = err.decode(errors="replace").strip()[-STDERR_TAIL:]
            raise MxCommandError("worker", f"the {action} child exited {proc.returncode} "
                                 "without an answer", seen=tail) from None
        if "error" in answer:
            e = answer["error"]
            raise _ERRORS.get(e["kind"], MxError)(e["step"], e["message"], e["seen"])
        return _report(action, answer["report"])


async def _spawn() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "postfix_sync.worker", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _ended(proc: asyncio.subprocess.Process) -> None:
    """Kill the child if it still runs; reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):   # it exited just now
            proc.kill()
    await proc.wait()


# -- the child -------------------------------------------------------------------------

async def _serve(action: Action, settings: MxSettings) -> dict[str, Any]:
    from .client import BackupMx

    try:
        async with BackupMx(settings) as mx:
            report: VerifyReport | RepairReport | FlushReport
            if action == "verify":
                report = await mx.verify()
            elif action == "repair":
                report = await mx.repair()
            else:
                report = await mx.flush()
    except MxError as exc:
        return {"error": {"kind": type(exc).__name__, "step": exc.step,
                          "message": exc.message, "seen": exc.seen}}
    return {"report": report.as_dict()}


def main() -> int:
    from . import client  # noqa: F401  (the slow import, done before the request comes)

    readable, _, _ = select.select([sys.stdin], [], [], PREPARED_IDLE)
    line = sys.stdin.readline() if readable else ""
    if not line:
        return 0     # no request (the caller is gone, or did not need us): nothing to do
    request = json.loads(line)
    answer = asyncio.run(_serve(request["action"], settings_from_json(request["settings"])))
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
