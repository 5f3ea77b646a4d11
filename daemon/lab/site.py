"""The lab: a whole site (LAN host, router, two DSL circuits, internet, customer network)
in network namespaces on this machine, built, changed and torn down from Python.

`Lab` is what tests, `dslfailover lab ...` and the demo use. Everything it creates is
recorded in a state file (`/run/dslfailover-lab/<id>.json`, statefile.py) *before* it
is created, so `down()` removes it all even after a crash; it also sweeps every
namespace that carries the lab's name prefix and every process still inside those
namespaces. This module brings the lab up and down and reports its status; the
programs it runs live in spawn.py, its circuit controls in controls.py, the daemon
config it writes in labconfig.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from . import netns, observe
from .controls import CircuitControls
from .labconfig import ConfigPaths, daemon_config_toml
from .netns import CommandResult, LabError
from .rekey import rekey_command
from .spawn import STOP_GRACE, SpawnedProcess, Spawner
from .statefile import StateFile
from .topology import DEFAULT_ID as DEFAULT_ID
from .topology import DEFAULT_ROUTER_RESTART as DEFAULT_ROUTER_RESTART
from .topology import (
    ROLES,
    ROUTER_CONTROL,
    ROUTER_LAN_ADDR,
    ROUTER_TELNET_PORT,
    SERVICES_FILE,
    SINK_LOG,
    Topology,
)

DEFAULT_ROOT = Path("/run/dslfailover-lab")
# Bounds the router emulator's start, from spawn to listening on its telnet port.
ROUTER_START_TIMEOUT = 15.0
# Bounds the services' start (sink, mosquitto, sshd, Postfix: Postfix alone may take 20 s).
SERVICES_START_TIMEOUT = 45.0
ROUTER_CONSOLES = {"cli": "netopia-cli", "menu": "netopia-menu"}


def new_lab_id() -> str:
    """A short random id for a throw-away lab (tests run several side by side)."""
    return "t" + secrets.token_hex(3)


class Lab(CircuitControls):
    """One lab, named by `lab_id`. Not re-entrant: `up()` once, `down()` once (or more)."""

    def __init__(self, lab_id: str = DEFAULT_ID, *, root: Path = DEFAULT_ROOT,
                 services: bool = True, console: str = "cli",
                 router_restart: float = DEFAULT_ROUTER_RESTART) -> None:
        if console not in ROUTER_CONSOLES:
            raise ValueError(f"console {console!r}: use one of {', '.join(ROUTER_CONSOLES)}")
        if not 0 <= router_restart <= 600:
            raise ValueError(f"router restart {router_restart:g}s: use 0..600 seconds")
        self.router_restart = router_restart
        self.topo = Topology(lab_id)
        self.with_services = services
        self.console = console
        self.lab_id = lab_id
        self.root = root
        self.state_file = root / f"{lab_id}.json"
        self.record = StateFile(self.state_file, lab_id)
        self.dir = root / lab_id
        self.config_path = self.dir / "dslfailover.toml"
        self.paths = ConfigPaths(
            state_dir=self.dir / "state", router_password=self.dir / "router.password",
            mx_key=self.dir / "id_ed25519", mx_known_hosts=self.dir / "known_hosts",
            control_socket=self.dir / "control.sock")
        self._spawner = Spawner(self.dir, self.record)

    # ---- bring-up and tear-down ---------------------------------------------------------

    async def up(self) -> None:
        """Create every namespace, link, address, route, rule and the tunnel; write the config.

        The router starts on the primary circuit. With services (the default) the router
        emulator runs in `router`, sink and mosquitto in `inside`, sshd and Postfix in
        `remote`. On any failure everything made so far is removed again before the
        error propagates.
        """
        existing = [ns for ns in await netns.netns_list() if ns.startswith(self.topo.prefix)]
        if self.state_file.exists() or existing:
            raise LabError(f"lab {self.lab_id!r} already exists ({self.state_file}, "
                           f"{len(existing)} namespaces): run `dslfailover lab down "
                           f"--id {self.lab_id}` first")
        self.record.data = {
            "id": self.lab_id, "status": "creating", "dir": str(self.dir),
            "config": str(self.config_path),
            "namespaces": list(self.topo.namespaces),
            "links": [{"ns": lk.ns, "name": lk.name, "peer_ns": lk.peer_ns, "peer": lk.peer}
                      for lk in self.topo.links],
            "processes": [], "wan": None, "cut": False, "loss": 0,
            "console": self.console, "router_restart": self.router_restart,
        }
        self.record.save()  # before anything exists: a crash from here on is recoverable
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            await netns.ip_batch(None, self.topo.create_lines())
            await asyncio.gather(*(netns.ip_batch(ns, lines)
                                   for ns, lines in self.topo.setup_lines().items()))
            await asyncio.gather(*(netns.sysctl(ns, "net.ipv4.ip_forward=1")
                                   for ns in self.topo.forwarding))
            await asyncio.gather(
                netns.nft_apply(self.topo.ns("router"), self.topo.router_ruleset()),
                netns.nft_apply(self.topo.ns("isp1"), self.topo.loss_ruleset(0)))
            await self.set_wan("primary")
            try:
                await self._write_files()
            except OSError as exc:
                raise LabError(f"{exc.filename or self.dir}: cannot write the lab's files: "
                               f"{exc.strerror or exc}") from exc
            if self.with_services:
                await self._start_processes()
                self._write_config()
            self.record.update(status="up")
        except BaseException:
            await self.down()
            raise

    async def _write_files(self) -> None:
        self.paths.state_dir.mkdir(parents=True, exist_ok=True)
        pw = self.paths.router_password
        pw.write_text(secrets.token_urlsafe(12) + "\n", encoding="utf-8")
        pw.chmod(0o600)
        # without services there is no sshd: a key of our own keeps the config loadable
        if not self.with_services and not self.paths.mx_key.exists():
            await netns.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                             f"dslfailover-lab-{self.lab_id}", "-f", str(self.paths.mx_key)])
        self.paths.mx_known_hosts.touch()
        self._write_config()

    def _write_config(self) -> None:
        services = self.services()
        text = daemon_config_toml(
            self.topo, self.paths, driver=ROUTER_CONSOLES[self.console],
            mx_user=services.get("sshd", {}).get("user", "dslfailover"),
            mx_config_dir=services.get("postfix", {}).get("config_dir"),
            router_restart=self.router_restart)
        self.config_path.write_text(text, encoding="utf-8")

    def services(self) -> dict[str, Any]:
        """What the services process reported once it was ready ({} before, or without)."""
        try:
            data = json.loads((self.dir / SERVICES_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sink_messages(self) -> list[dict[str, Any]]:
        """Messages our mail server (the inside sink) accepted, oldest first."""
        try:
            lines = (self.dir / SINK_LOG).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    async def _start_processes(self) -> None:
        # a TaskGroup, not gather: when one fails the other is cancelled before down()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._start_router(), name="lab-router")
                tg.create_task(self._start_services(), name="lab-services")
        except* LabError as group:
            raise group.exceptions[0] from None

    async def _start_router(self) -> None:
        """The Netopia emulator on the router's LAN address, restart to apply (its
        console's default firmware profile): a save changes the saved config; the restart
        (`router_restart` seconds away) really re-addresses wan0 and runs the re-key hook."""
        proc = await self.spawn("router", [
            sys.executable, "-m", "router_drivers.emulator", "--console", self.console,
            "--host", str(ROUTER_LAN_ADDR), "--port", str(ROUTER_TELNET_PORT),
            "--password-file", str(self.paths.router_password), "--apply-iface", "wan0",
            "--apply-command", rekey_command(self.topo),
            "--restart-delay", f"{self.router_restart:g}",
            "--control", str(self.dir / ROUTER_CONTROL)], name="router-emulator")
        log = Path(proc.log)
        await self._spawner.wait_ready(
            proc, lambda: "emulator:" in log.read_text(errors="replace"),
            ROUTER_START_TIMEOUT, "router emulator")

    async def _start_services(self) -> None:
        proc = await self.spawn("inside", [
            sys.executable, "-m", "daemon.lab.services", "--dir", str(self.dir),
            "--remote-ns", self.topo.ns("remote"), "--key-file", str(self.paths.mx_key),
            "--known-hosts", str(self.paths.mx_known_hosts)], name="services")
        await self._spawner.wait_ready(proc, (self.dir / SERVICES_FILE).exists,
                                       SERVICES_START_TIMEOUT, "lab services")

    async def down(self) -> list[str]:
        """Remove everything this lab made (also after a crash). Returns what was removed."""
        removed: list[str] = []
        try:
            state = self.record.known()
        except LabError as exc:
            # a torn state file must not keep the lab alive: the sweeps below still work
            state = {}
            removed.append(f"(ignored {exc})")
        records = [p for p in state.get("processes", []) if isinstance(p, dict)]
        # only pids still in the lab's namespace: after a crash or reboot a recorded pid
        # may belong to someone else by now (the sweep below catches the rest)
        pids = [int(p["pid"]) for p in records
                if netns.pid_alive(int(p["pid"])) and netns.pid_in_netns(int(p["pid"]), p["ns"])]
        await netns.kill_all(pids, groups=True, grace=STOP_GRACE)
        removed += [f"process {p['name']} (pid {p['pid']})" for p in records
                    if int(p["pid"]) in pids]
        self._spawner.reap()
        names = {str(ns) for ns in state.get("namespaces", [])}
        names |= {ns for ns in await netns.netns_list() if ns.startswith(self.topo.prefix)}
        present = set(await netns.netns_list())
        for ns in sorted(names & present):
            # whatever still runs in there: launched by a hook, a daemonized server, ...
            leftovers = await netns.netns_pids(ns)
            await netns.kill_all(leftovers)
            removed += [f"process pid {pid} in {ns}" for pid in leftovers]
        for ns in sorted(names & present):
            # deleting a namespace also deletes its veth ends, bridge and tunnel device
            await netns.netns_delete(ns)
            removed.append(f"netns {ns}")
        self._spawner.reap()
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
            removed.append(f"dir {self.dir}")
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
            removed.append(f"state {self.state_file}")
        self.record.data = {}
        return removed

    async def __aenter__(self) -> Lab:
        await self.up()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.down()

    # ---- running things inside ----------------------------------------------------------

    def ns(self, role_or_name: str) -> str:
        """A namespace name from its role (`inside`, `router`, ...) or its full name."""
        if role_or_name in ROLES:
            return self.topo.ns(role_or_name)
        if role_or_name.startswith(self.topo.prefix):
            return role_or_name
        raise LabError(f"{role_or_name!r} is not a namespace of lab {self.lab_id!r}")

    async def exec(self, ns: str, argv: Sequence[str], *, check: bool = True,
                   timeout: float = netns.COMMAND_TIMEOUT,
                   stdin: str | None = None) -> CommandResult:
        """Run a command to completion inside a namespace of the lab."""
        return await netns.run(netns.in_netns(self.ns(ns), argv), check=check,
                               timeout=timeout, stdin=stdin)

    async def spawn(self, ns: str, argv: Sequence[str], *, name: str,
                    env: dict[str, str] | None = None) -> SpawnedProcess:
        """Start a long-running program in a namespace, in its own process group.

        Its output goes to `<lab dir>/<name>.log`; it is recorded in the state file and
        stopped by `down()` (it outlives this Python process, e.g. after `lab up`).
        """
        return await self._spawner.spawn(self.ns(ns), argv, name=name, env=env)

    async def stop(self, proc: SpawnedProcess) -> None:
        """Stop one spawned program (its whole process group)."""
        await self._spawner.stop(proc)

    def exit_status(self, proc: SpawnedProcess) -> int | None:
        """How a program this lab object spawned ended (None: it still runs)."""
        return self._spawner.exit_status(proc.pid)

    # ---- what it looks like ---------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """What exists and what works, as plain data (the CLI prints it, `--json` as is)."""
        state = self.record.known()
        present = set(await netns.netns_list())
        names = [str(n) for n in state.get("namespaces", [])] or list(self.topo.namespaces)
        namespaces = {ns: ns in present for ns in names}
        processes = [{**p, "alive": netns.pid_alive(int(p["pid"]))}
                     for p in state.get("processes", [])]
        result: dict[str, Any] = {
            "id": self.lab_id, "up": bool(state) and all(namespaces.values()),
            "state_file": str(self.state_file) if state else None,
            "config": state.get("config"), "namespaces": namespaces, "processes": processes,
            "router": {"console": state.get("console", self.console),
                       "restart_s": float(state.get("router_restart", self.router_restart))},
        }
        if not result["up"]:
            return result
        result |= await observe.network_status(self.topo, int(state.get("loss", 0)))
        result["services"] = self.services()
        result["sink_messages"] = len(self.sink_messages())
        return result


@asynccontextmanager
async def running_lab(lab_id: str | None = None, *, root: Path = DEFAULT_ROOT,
                      services: bool = True, console: str = "cli",
                      router_restart: float = DEFAULT_ROUTER_RESTART) -> AsyncIterator[Lab]:
    """A lab that is up for the duration of the block and gone after it, whatever happens."""
    lab = Lab(lab_id or new_lab_id(), root=root, services=services, console=console,
              router_restart=router_restart)
    try:
        await lab.up()
        yield lab
    finally:
        # a cancelled test must still not leave namespaces behind
        await asyncio.shield(lab.down())


__all__ = ["DEFAULT_ID", "DEFAULT_ROOT", "DEFAULT_ROUTER_RESTART", "Lab", "LabError",
           "SpawnedProcess", "new_lab_id", "running_lab"]
