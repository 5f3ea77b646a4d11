"""The lab: a whole site (LAN host, router, two DSL circuits, internet, customer network)
in network namespaces on this machine, built, changed and torn down from Python.

`Lab` is what tests, `dslfailover lab ...` and the demo use. Everything it creates is
recorded in a state file (`/run/dslfailover-lab/<id>.json`) *before* it is created, so
`down()` removes it all even after a crash; it also sweeps every namespace that carries
the lab's name prefix and every process still inside those namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any

from router_drivers import WanConfig

from . import netns, observe
from .netns import CommandResult, LabError
from .rekey import rekey, rekey_command
from .topology import (
    CIRCUITS,
    MAIL_DOMAIN,
    MX_ADDR,
    ROLES,
    ROUTER_LAN_ADDR,
    ROUTER_TELNET_PORT,
    SERVICES_FILE,
    SINK_LOG,
    CircuitName,
    ConfigPaths,
    Topology,
    daemon_config_toml,
    wan_lines,
)

DEFAULT_ROOT = Path("/run/dslfailover-lab")
DEFAULT_ID = "lab"
# Bounds one SMTP step (connect, banner, each reply) of `send_to_backup_mx()`.
SEND_TIMEOUT = 5.0
# Bounds `ip netns exec` moving a spawned program into its namespace (milliseconds).
SPAWN_TIMEOUT = 5.0
# Bounds the router emulator's start, from spawn to listening on its telnet port.
ROUTER_START_TIMEOUT = 15.0
# Bounds the services' start (sink, mosquitto, sshd, Postfix: Postfix alone may take 20 s).
SERVICES_START_TIMEOUT = 45.0
# Bounds how long a stopping lab process may take after SIGTERM (the services process
# stops Postfix cleanly, which takes a few seconds) before it is killed.
STOP_GRACE = 15.0
ROUTER_CONSOLES = {"cli": "netopia-cli", "menu": "netopia-menu"}
# How long the lab's router is away when it restarts to apply a saved change (its
# emulator's --restart-delay): a plausible real figure. Tests and the demo pass less.
DEFAULT_ROUTER_RESTART = 20.0
_PROCESS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # also its log file's name


# Run in the remote namespace: one message to the backup MX's SMTP port.
_SEND = """
import smtplib, sys
host, rcpt, subject, timeout = sys.argv[1:5]
with smtplib.SMTP(host, 25, timeout=float(timeout)) as smtp:
    smtp.sendmail("sender@remote.test", [rcpt],
                  "Subject: %s\\r\\n\\r\\nfrom the lab\\r\\n" % subject)
"""


def _log_tail(path: str, size: int = 1500) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return (text[-size:] if len(text) > size else text) or "(empty log)"


def new_lab_id() -> str:
    """A short random id for a throw-away lab (tests run several side by side)."""
    return "t" + secrets.token_hex(3)


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


class Lab:
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
        self.dir = root / lab_id
        self.config_path = self.dir / "dslfailover.toml"
        self.paths = ConfigPaths(
            state_dir=self.dir / "state", router_password=self.dir / "router.password",
            mx_key=self.dir / "id_ed25519", mx_known_hosts=self.dir / "known_hosts",
            control_socket=self.dir / "control.sock")
        self._state: dict[str, Any] = {}
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # ---- state file -------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.state_file}: unreadable lab state: {exc}") from exc
        if not isinstance(data, dict):
            raise LabError(f"{self.state_file}: lab state is not a JSON object")
        return data

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self._state, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _ensure_state(self) -> dict[str, Any]:
        if not self._state:
            self._state = self._load_state()
        if not self._state:
            raise LabError(f"lab {self.lab_id!r} is not up (no {self.state_file})")
        return self._state

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
        self._state = {
            "id": self.lab_id, "status": "creating", "dir": str(self.dir),
            "config": str(self.config_path),
            "namespaces": list(self.topo.namespaces),
            "links": [{"ns": lk.ns, "name": lk.name, "peer_ns": lk.peer_ns, "peer": lk.peer}
                      for lk in self.topo.links],
            "processes": [], "wan": None, "cut": False, "loss": 0,
            "console": self.console, "router_restart": self.router_restart,
        }
        self._save_state()  # before anything exists: a crash from here on is recoverable
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
            self._state["status"] = "up"
            self._save_state()
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

    async def _wait_for(self, proc: SpawnedProcess, ready: Callable[[], bool],
                        timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            if not netns.pid_alive(proc.pid):
                raise LabError(f"{what} exited at start: {_log_tail(proc.log)}")
            if loop.time() > deadline:
                raise LabError(f"{what} not ready within {timeout:g}s: {_log_tail(proc.log)}")
            await asyncio.sleep(0.05)

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
            "--restart-delay", f"{self.router_restart:g}"], name="router-emulator")
        log = Path(proc.log)
        await self._wait_for(proc, lambda: "emulator:" in log.read_text(errors="replace"),
                             ROUTER_START_TIMEOUT, "router emulator")

    async def _start_services(self) -> None:
        proc = await self.spawn("inside", [
            sys.executable, "-m", "daemon.lab.services", "--dir", str(self.dir),
            "--remote-ns", self.topo.ns("remote"), "--key-file", str(self.paths.mx_key),
            "--known-hosts", str(self.paths.mx_known_hosts)], name="services")
        await self._wait_for(proc, lambda: (self.dir / SERVICES_FILE).exists(),
                             SERVICES_START_TIMEOUT, "lab services")

    async def down(self) -> list[str]:
        """Remove everything this lab made (also after a crash). Returns what was removed."""
        removed: list[str] = []
        try:
            state = self._state or self._load_state()
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
        self._reap()
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
        self._reap()
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
            removed.append(f"dir {self.dir}")
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
            removed.append(f"state {self.state_file}")
        self._state = {}
        return removed

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

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
        if not _PROCESS_NAME.fullmatch(name):
            raise LabError(f"process name {name!r}: use letters, digits, '.', '_', '-'")
        state = self._ensure_state()
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / f"{name}.log"
        full = netns.in_netns(self.ns(ns), argv)
        with log.open("ab") as out:
            try:
                # Popen, not asyncio's subprocess: asyncio kills its children when the
                # loop closes, and these must outlive it (`lab up` returns at once).
                child = subprocess.Popen(  # noqa: ASYNC220
                    full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env)
            except OSError as exc:
                raise LabError(f"{name}: cannot start {argv[0]}: {exc.strerror}") from exc
        self._children[child.pid] = child
        proc = SpawnedProcess(name, self.ns(ns), child.pid, list(argv), str(log))
        state["processes"].append(proc.as_dict())
        self._save_state()
        await self._entered(proc, child)
        return proc

    async def _entered(self, proc: SpawnedProcess, child: subprocess.Popen[bytes]) -> None:
        """Wait until `ip netns exec` has moved the child into its namespace: before that
        neither `down()` nor the namespace sweep would recognise it as the lab's."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SPAWN_TIMEOUT
        while not netns.pid_in_netns(proc.pid, proc.ns):
            if child.poll() is not None:
                raise LabError(f"{proc.name} exited at once ({child.returncode}): "
                               f"{_log_tail(proc.log)}")
            if loop.time() > deadline:
                await netns.kill_all([proc.pid], groups=True)
                raise LabError(f"{proc.name} did not enter {proc.ns} within {SPAWN_TIMEOUT:g}s")
            await asyncio.sleep(0.005)

    async def stop(self, proc: SpawnedProcess) -> None:
        """Stop one spawned program (its whole process group)."""
        await netns.kill_all([proc.pid], groups=True)
        self._reap()
        state = self._ensure_state()
        state["processes"] = [p for p in state["processes"] if p.get("pid") != proc.pid]
        self._save_state()

    # ---- what tests and the operator change ---------------------------------------------

    async def cut(self) -> None:
        """The primary circuit dies: isp1's link to the WAN segment goes down."""
        await netns.ip_batch(self.topo.ns("isp1"), ["link set wan0 down"])
        self._ensure_state()["cut"] = True
        self._save_state()

    async def restore(self) -> None:
        """The primary circuit comes back."""
        await netns.ip_batch(self.topo.ns("isp1"), ["link set wan0 up"])
        self._ensure_state()["cut"] = False
        self._save_state()

    async def set_loss(self, percent: int) -> None:
        """Drop `percent` % of ICMP on the primary path (0 clears)."""
        await netns.nft_apply(self.topo.ns("isp1"), self.topo.loss_ruleset(percent))
        self._ensure_state()["loss"] = percent
        self._save_state()

    async def set_wan(self, circuit: CircuitName, *, rekey_tunnel: bool = True) -> None:
        """Address the router's WAN for a circuit by hand (what the emulator does on apply).

        With `rekey_tunnel` the tunnel is re-keyed from the new address, as the emulator's
        apply hook does; without it the tunnel stays bound to the old address.
        """
        wan = CIRCUITS[circuit].wan
        await netns.ip_batch(self.topo.ns("router"), wan_lines(wan))
        if rekey_tunnel:
            await self.rekey(wan.address)
        self._ensure_state()["wan"] = circuit
        self._save_state()

    async def rekey(self, local: IPv4Address) -> bool:
        """Re-key the tunnel from the router's WAN address `local` (False: already was)."""
        return await rekey(self.topo.ns("router"), self.topo.ns("remote"), local)

    async def read_wan(self) -> WanConfig | None:
        """The router namespace's actual WAN address and default gateway, if it has both."""
        return await observe.read_wan(self.topo)

    async def flap(self, times: int, down: float, up: float) -> None:
        """Cut and restore the primary `times` times: `down` seconds cut, `up` restored."""
        for i in range(times):
            await self.cut()
            await asyncio.sleep(down)
            await self.restore()
            if i + 1 < times:
                await asyncio.sleep(up)

    async def send_to_backup_mx(self, subject: str, *, rcpt: str = f"user@{MAIL_DOMAIN}",
                                timeout: float = SEND_TIMEOUT) -> None:
        """Send one message to the backup MX from the customer's network (as the internet
        would); it reaches our sink only when the tunnel works (see `sink_messages()`)."""
        await self.exec("remote", [sys.executable, "-c", _SEND, str(MX_ADDR), rcpt, subject,
                                   f"{timeout:g}"], timeout=timeout * 3)

    async def status(self) -> dict[str, Any]:
        """What exists and what works, as plain data (the CLI prints it, `--json` as is)."""
        state = self._state or self._load_state()
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
