"""The chaos soak's watchers: what is checked all along while faults come and go.

- the router (the emulator's own state, over its control socket, every SAMPLE seconds):
  its saved and running config are always one of the two WANs; equal whenever no
  router action is in flight (the daemon says none, the emulator has no session open
  and is not restarting, for two samples in a row); never two sessions at once;
- the daemon never exits unless the soak told it to or killed it (an exit is reported
  with its status and the end of its log, and the daemon is started again);
- after every start, the state published on MQTT agrees with the router (`circuit` is
  the router's running WAN, `state` is past `starting`) within AGREE_LIMIT seconds of the
  spawn, or of the router being back when it was away (later is
  `state_agrees_within_5s`, never within AGREE_WATCH is `state_agrees_after_start`);
- a mail to the backup MX every MAIL_EVERY seconds (checked at the sink at the end);
- what the daemon process holds (RSS, fds, threads, asyncio tasks: its status's
  `process`), per start: the peak, and the growth between samples at rest (in the
  quiet gaps between faults, on the primary).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ..control import ControlError
from ..stopping import cancel_all
from .chaos import Life, json_object
from .netns import LabError
from .runner import DaemonInLab, JsonLinesTail
from .site import Lab
from .spawn import log_tail
from .topology import CIRCUITS

SAMPLE = 0.25          # seconds between two looks at the router and the daemon
AGREE_LIMIT = 5.0      # after a start: published state agrees with the router within this
AGREE_WATCH = 60.0     # ... and how long we keep looking, to report how late it was
MAIL_EVERY = 10.0      # seconds between two mails to the backup MX
STABLE = ("primary", "backup", "held")
CLOSE_WITHIN = 5.0     # bounds stopping the watchers (their awaits are short polls)


def circuit_of(wan: object) -> str | None:
    """`primary`/`backup` for a WAN dict the emulator reports; None for anything else."""
    return next((n for n, c in CIRCUITS.items() if c.wan.as_dict() == wan), None)


class Watch:
    """The watchers of one soak; `violate` collects what they find."""

    def __init__(self, lab: Lab, daemon: DaemonInLab, mqtt: JsonLinesTail, prefix: str,
                 violate: Callable[[str, dict[str, Any]], None]) -> None:
        self.lab = lab
        self.daemon = daemon
        self.mqtt = mqtt
        self.prefix = prefix
        self.violate = violate
        self.router: dict[str, Any] = {}       # the emulator's state, last sample
        self.status: dict[str, Any] = {}       # the daemon's status, last sample
        self.samples = 0                       # samples taken so far
        self.expect_running = False            # False while the soak stops it on purpose
        self.quiet = False                     # True in a gap after the daemon settled
        self.mqtt_lines: list[dict[str, Any]] = []
        self.starts: list[dict[str, Any]] = []
        self.lives: list[Life] = []            # per start: what the process held
        self.exits: list[dict[str, Any]] = []  # unexpected exits
        self.mails_sent: list[str] = []
        self.mail_errors: list[str] = []
        self._reported: set[tuple[str, str]] = set()
        self._differ = 0                       # samples in a row with saved != running idle
        self._overlaps = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the daemon's starts ------------------------------------------------------------

    async def start_daemon(self) -> None:
        """Start the daemon, and watch its published state agree with the router."""
        await self.daemon.start()
        self.expect_running = True
        spawned = time.time()
        self.lives.append(Life(spawned))
        task = asyncio.create_task(self._agreement(spawned), name="chaos-agree")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def read_mqtt(self) -> list[dict[str, Any]]:
        self.mqtt_lines += self.mqtt.read()
        return self.mqtt_lines

    async def _agreement(self, spawned: float) -> None:
        base, agreed = spawned, None
        record: dict[str, Any] = {"at": spawned}
        self.starts.append(record)
        deadline = spawned + AGREE_WATCH
        while time.time() < deadline:
            if self.router.get("restarting") or self.router.get("refusing"):
                base = time.time()   # the router is away: the daemon cannot know yet
                record["router_away_at_start"] = True
            want = circuit_of(self.router.get("running"))
            states = [line for line in self.read_mqtt() if line.get("at", 0) >= spawned
                      and line.get("topic") == f"{self.prefix}/state"]
            last = json_object(states[-1].get("payload")) if states else {}
            if last.get("state") not in (None, "starting") and last.get("circuit") == want:
                agreed = time.time() - base
                break
            await asyncio.sleep(SAMPLE / 2)
        record["agree_s"] = None if agreed is None else round(agreed, 2)
        if agreed is None or agreed > AGREE_LIMIT:
            # never (within AGREE_WATCH), or later than the limit: a timing, for the bench
            late = "state_agrees_after_start" if agreed is None else "state_agrees_within_5s"
            self.violate(late, {
                "agree_s": record["agree_s"], "limit_s": AGREE_LIMIT,
                "router_running": circuit_of(self.router.get("running")),
                "published": last if states else None})

    # -- the sampler ----------------------------------------------------------------------

    async def sample_forever(self, note: Callable[[str], None]) -> None:
        while True:
            try:
                await self.sample()
            except (LabError, OSError) as exc:   # a restart that failed: say so, go on
                note(f"sampler: {type(exc).__name__}: {exc}")
            await asyncio.sleep(SAMPLE)

    async def sample(self) -> None:
        with contextlib.suppress(ControlError, KeyError):
            self.router = await self.lab.router_state()
        self._check_router()
        if self.expect_running and not self.daemon.alive:
            await self._exited()
            return
        self.status = {}
        if self.expect_running:
            with contextlib.suppress(ControlError):
                self.status = await self.daemon.status()
            self._note_resources()
        self._check_saved_equals_running()
        self.samples += 1

    def _note_resources(self) -> None:
        s, process = self.status, self.status.get("process")
        if self.lives and isinstance(process, dict):
            # at rest: settled after a fault, before the next (a cut's first seconds, the
            # probes still timing out on the primary, hold more tasks and sockets)
            at_rest = (self.quiet and s.get("state") == "primary"
                       and s.get("router_action") is None and s.get("mx_action") is None)
            self.lives[-1].add(process, at_rest=at_rest, at=time.time())

    def _once(self, invariant: str, key: str, detail: dict[str, Any]) -> None:
        if (invariant, key) not in self._reported:
            self._reported.add((invariant, key))
            self.violate(invariant, detail)

    def _check_router(self) -> None:
        r = self.router
        if not r:
            return
        for which in ("saved", "running"):
            if circuit_of(r.get(which)) is None:
                self._once("router_config_is_a_wan", f"{which} {r.get(which)}",
                           {"which": which, "config": r.get(which)})
        overlaps = int(r.get("overlaps", 0))
        if overlaps > self._overlaps:
            self.violate("one_router_dialogue_at_a_time", {
                "overlaps": overlaps, "max_open": r.get("max_open"),
                "daemon_action": self.status.get("router_action")})
        self._overlaps = overlaps

    def _check_saved_equals_running(self) -> None:
        r, s = self.router, self.status
        idle = (r and not r.get("open_sessions") and not r.get("restarting")
                and s.get("state") in STABLE and s.get("router_action") is None)
        if idle and r.get("saved") != r.get("running"):
            self._differ += 1
            if self._differ >= 2:
                self._once("saved_equals_running_after_action",
                           f"{r.get('saved')} {r.get('running')} {r.get('saves')}", {
                               "saved": circuit_of(r.get("saved")),
                               "running": circuit_of(r.get("running")),
                               "daemon_state": s.get("state"),
                               "daemon_circuit": s.get("circuit"),
                               "router_saves": r.get("saves"),
                               "router_restarts": r.get("restarts")})
        else:
            self._differ = 0

    async def _exited(self) -> None:
        status = self.daemon.exit_status()
        proc = self.daemon.proc
        self.daemon.read()
        exit_record = {"exit_status": status,
                       "log_tail": log_tail(proc.log, 800) if proc else ""}
        self.exits.append(exit_record)
        self.violate("daemon_never_exits_unasked", exit_record)
        await self.daemon.stop()
        await self.start_daemon()

    # -- mail -------------------------------------------------------------------------------

    async def mail_forever(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(MAIL_EVERY)
            n += 1
            subject = f"chaos mail {n}"
            try:
                await self.lab.send_to_backup_mx(subject)
                self.mails_sent.append(subject)
            except LabError as exc:   # not accepted by the backup MX: not ours to deliver
                self.mail_errors.append(f"{subject}: {exc}"[:300])

    async def close(self) -> None:
        await cancel_all(self._tasks, CLOSE_WITHIN)

