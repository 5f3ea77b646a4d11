"""Turns the state machine's actions into driver calls and their outcomes into events.

Every action runs under a named timeout and never raises: a failure becomes a result
event with the reason, which the state machine turns into `fault` and a retry. Router
read-backs are classified against the configured primary/backup WAN configs here, so the
machine only ever sees a circuit.

An apply is done only when the new circuit carries traffic: after the driver's read-back
matches, the live proof (`liveproof.py`) pings the new gateway and a far target; one
RouterResult reports both, ok only when both passed, with the durations of the steps
(the driver's `timings` and the proof's own).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from postfix_sync import FlushReport, MxError, RepairReport, VerifyReport
from postfix_sync.worker import MxWorker
from router_drivers import RouterDriver, RouterError, WanConfig

from .liveproof import LiveProof
from .machine import (
    AbandonMx,
    ApplyWan,
    Effect,
    FlushMx,
    MxResult,
    ReadRouter,
    RepairMx,
    RouterResult,
    VerifyMx,
)
from .model import Circuit


class MxPort(Protocol):
    """What the daemon needs from the backup MX (RemoteMx, or a stand-in)."""

    async def prepare(self) -> None: ...
    async def close(self) -> None: ...
    async def verify(self) -> VerifyReport: ...
    async def repair(self) -> RepairReport: ...
    async def flush(self) -> FlushReport: ...


# The real backup MX over SSH: each action in a short-lived child process of its own
# (postfix_sync.worker), one connection per action, so the daemon never holds asyncssh
# and cryptography (~17 MB of RSS after the first check, never given back). Its
# `prepare` starts the child of the checks that follow a failover while the router's
# dialogue runs (`Executor.run`): the child's start (~0.2-0.4 s, the import) is then off
# the critical path.
RemoteMx = MxWorker


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished action: the event for the machine and what to tell the audit trail."""

    event: RouterResult | MxResult
    summary: str
    detail: dict[str, Any]
    seconds: float


def classify(wan: WanConfig, primary: WanConfig, backup: WanConfig) -> Circuit:
    if wan == primary:
        return Circuit.PRIMARY
    if wan == backup:
        return Circuit.BACKUP
    return Circuit.UNKNOWN


def driver_timings(driver: RouterDriver) -> dict[str, float]:
    """The last apply's step durations as the driver reports them (`timings`: dialogue,
    restart_wait, read_back); {} from a driver that does not (yet) report them."""
    timings = getattr(driver, "timings", None)
    if not isinstance(timings, Mapping):
        return {}
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)}


def _rounded(durations: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in durations.items()}


def _tail(text: str, lines: int = 150) -> str:
    return "\n".join(text.splitlines()[-lines:])


class Executor:
    def __init__(self, driver: RouterDriver, *, primary: WanConfig, backup: WanConfig,
                 mx: MxPort | None, router_timeout: float, mx_timeout: float,
                 live_proof: LiveProof | None = None) -> None:
        self.driver = driver
        self.primary = primary
        self.backup = backup
        self.mx = mx
        self.router_timeout = router_timeout  # bounds a whole read or apply, restarts included
        self.mx_timeout = mx_timeout          # bounds one verify/repair/flush over SSH
        self.live_proof = live_proof          # None: trust the read-back alone

    async def run(self, action: Effect) -> Outcome:
        started = time.monotonic()
        result: tuple[RouterResult | MxResult, str, dict[str, Any]]
        if isinstance(action, ReadRouter | ApplyWan):
            failover = isinstance(action, ApplyWan) and action.circuit == Circuit.BACKUP
            mx = self.mx if failover else None
            if mx is not None:
                await mx.prepare()   # the MX checks follow this failover
            result = await self._router(action)
            if mx is not None and not result[0].ok:
                await mx.close()     # no checks follow a failed apply
        else:
            assert not isinstance(action, AbandonMx), "the action runner's, never run"
            result = await self._mx(action)
        event, summary, detail = result
        seconds = time.monotonic() - started
        if isinstance(event, MxResult):
            event = replace(event, seconds=seconds)  # a verify's time is `mx_checks`
        return Outcome(event, summary, detail, seconds)

    async def _router(self, action: ReadRouter | ApplyWan
                      ) -> tuple[RouterResult, str, dict[str, Any]]:
        target = None
        if isinstance(action, ApplyWan):
            target = self.backup if action.circuit == Circuit.BACKUP else self.primary
        what = f"apply {action.circuit.value}" if isinstance(action, ApplyWan) else "read"
        try:
            async with asyncio.timeout(self.router_timeout):
                if target is None:
                    wan = await self.driver.read_wan()
                else:
                    wan = await self.driver.apply_wan(target)
        except TimeoutError:
            took = driver_timings(self.driver) if target is not None else {}
            return (RouterResult(action.action_id, False,
                                 detail=f"router {what}: no result within "
                                        f"{self.router_timeout:g}s", durations=took),
                    f"router {what} timed out", {"transcript": _tail(self.driver.transcript())})
        except RouterError as exc:
            took = driver_timings(self.driver) if target is not None else {}
            return (RouterResult(action.action_id, False, detail=f"router {what}: {exc.step}: "
                                 f"{exc.message}", durations=took),
                    f"router {what} failed at {exc.step}: {exc.message}",
                    {"step": exc.step, "transcript": _tail(self.driver.transcript()),
                     "durations_s": _rounded(took)})
        circuit = classify(wan, self.primary, self.backup)
        detail: dict[str, Any] = {"wan": wan.as_dict(), "circuit": circuit.value,
                                  "transcript": _tail(self.driver.transcript())}
        note = "" if circuit != Circuit.UNKNOWN else f"read {wan}"
        if not isinstance(action, ApplyWan):
            return (RouterResult(action.action_id, True, circuit, note),
                    f"router {what}: now {wan} ({circuit.value})", detail)
        durations = driver_timings(self.driver)
        if self.live_proof is None or circuit != action.circuit:
            detail["durations_s"] = _rounded(durations)
            return (RouterResult(action.action_id, True, circuit, note, durations),
                    f"router {what}: now {wan} ({circuit.value})", detail)
        proof = await self.live_proof.prove(circuit, wan)
        durations["live_proof"] = proof.seconds
        detail["live_proof"] = dict(proof.detail)
        detail["durations_s"] = _rounded(durations)
        if not proof.ok:
            return (RouterResult(action.action_id, False, circuit,
                                 f"live proof: {proof.why}", durations),
                    f"router {what}: live proof failed: {proof.why}", detail)
        far = proof.detail.get("far_answered")
        return (RouterResult(action.action_id, True, circuit, note, durations),
                f"router {what}: now {wan} ({circuit.value}); gateway "
                f"{proof.detail.get('gateway')} answers" + (f", {far} answers" if far else ""),
                detail)

    async def _mx(self, action: VerifyMx | RepairMx | FlushMx
                  ) -> tuple[MxResult, str, dict[str, Any]]:
        name = {VerifyMx: "verify", RepairMx: "repair", FlushMx: "flush"}[type(action)]
        if self.mx is None:
            return MxResult(action.action_id, False, "no backup MX"), "no backup MX", {}
        try:
            async with asyncio.timeout(self.mx_timeout):
                if isinstance(action, VerifyMx):
                    report = await self.mx.verify()
                    failed = report.failed()
                    why = "; ".join(f"{c.name}: {c.detail}" for c in failed)
                    return (MxResult(action.action_id, report.ok, why),
                            "backup MX verified" if report.ok else f"backup MX: {why}",
                            report.as_dict())
                if isinstance(action, RepairMx):
                    repaired = await self.mx.repair()
                    ok = repaired.verify.ok if repaired.verify is not None else False
                    summary = ("backup MX repaired" if repaired.changed else
                               "backup MX repair changed nothing")
                    return (MxResult(action.action_id, ok, repaired.detail), summary,
                            repaired.as_dict())
                flushed = await self.mx.flush()
                return (MxResult(action.action_id, True, flushed.command),
                        f"backup MX queue flushed ({flushed.command}; deferred "
                        f"{flushed.deferred_before} -> {flushed.deferred_after})",
                        flushed.as_dict())
        except TimeoutError:
            why = f"mx {name}: no result within {self.mx_timeout:g}s"
            return MxResult(action.action_id, False, why), why, {}
        except MxError as exc:
            why = f"mx {name}: {exc}"
            return MxResult(action.action_id, False, why), why, {"step": exc.step}
