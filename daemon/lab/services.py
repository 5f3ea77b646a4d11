"""The lab's services process: our mail server, broker, and the customer's backup MX.

`Lab.up()` starts this module in the `inside` namespace
(`python -m daemon.lab.services --dir LABDIR --remote-ns NS`) so that:

- the SMTP sink (our mail server) runs in this process and listens on inside :25,
- mosquitto runs on inside's loopback (it inherits this namespace),
- sshd and a private Postfix run in the `remote` namespace on the backup MX address,

and all of them outlive the command that made the lab (`dslfailover lab up` returns at
once). Once everything listens it writes `services.json` (ports, files, Postfix config
dir) and copies the SSH client key and a known_hosts entry to the lab's config paths;
each message the sink accepts is appended to `sink.jsonl`. A control socket
(`services.sock`, one JSON line each way) takes the broker or sshd down and back up for
the chaos soak: `{"op": "broker"|"sshd", "up": bool}`. SIGTERM stops them all cleanly;
launcher files live under the lab directory, so `lab down` removes them even after a
SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router_drivers.emulator.control import Handler, serve_json_lines

from .mosquitto import Mosquitto
from .postfix import PostfixInstance
from .sink import Received, SmtpSink
from .sshd import Sshd
from .topology import (
    INSIDE_ADDR,
    MAIL_DOMAIN,
    MQTT_PORT,
    MX_ADDR,
    SERVICES_CONTROL,
    SERVICES_FILE,
    SINK_LOG,
    SSH_PORT,
    TUNNEL_ROUTER,
)


def _sink_line(msg: Received) -> str:
    parsed = email.message_from_bytes(msg.content, policy=email.policy.default)
    return json.dumps({"from": msg.mail_from, "to": list(msg.rcpt_tos),
                       "subject": str(parsed.get("Subject", "")),
                       "message_id": str(parsed.get("Message-ID", "")),
                       "size": len(msg.content), "at": time.time()})


class _LoggingSink(SmtpSink):
    """The sink, also appending each message to a JSON-lines file others can read."""

    def __init__(self, log: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._log = log

    def record(self, msg: Received) -> None:
        super().record(msg)
        with self._log.open("a", encoding="utf-8") as fh:
            fh.write(_sink_line(msg) + "\n")


def _write_client_files(sshd: Sshd, key_file: Path, known_hosts: Path) -> None:
    """The daemon's SSH key and known_hosts for the backup MX, where its config says."""
    shutil.copyfile(sshd.client_key, key_file)
    key_file.chmod(0o600)
    # asyncssh reads KEY.pub next to KEY when present: a stale one is a "mismatch"
    Path(f"{key_file}.pub").unlink(missing_ok=True)
    # the launcher names the host as OpenSSH and asyncssh look it up (`Sshd.host_pattern`)
    shutil.copyfile(sshd.known_hosts, known_hosts)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # written last and atomically: its existence is the "ready" signal Lab waits for
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


async def serve(lab_dir: Path, remote_ns: str, key_file: Path, known_hosts: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        sink = await stack.enter_async_context(_LoggingSink.started(
            log=lab_dir / SINK_LOG, host=str(INSIDE_ADDR), port=25))
        broker = Mosquitto(host="127.0.0.1", port=MQTT_PORT, persistent=True)
        await stack.enter_async_context(broker)
        sshd = await stack.enter_async_context(Sshd.started(
            host=str(MX_ADDR), port=SSH_PORT, netns=remote_ns))
        postfix = await stack.enter_async_context(PostfixInstance.started(
            domain=MAIL_DOMAIN, nexthop=f"smtp:[{TUNNEL_ROUTER.ip}]:25", address=str(MX_ADDR),
            port=25, netns=remote_ns, myhostname="backup-mx.remote.test"))
        _write_client_files(sshd, key_file, known_hosts)
        control = await serve_json_lines(lab_dir / SERVICES_CONTROL,
                                         _control_handler(broker, sshd))
        stack.callback(control.close)
        info = {
            "pid": os.getpid(),
            "sink": {"host": sink.host, "port": sink.port, "log": str(lab_dir / SINK_LOG)},
            "mqtt": {"host": broker.host, "port": broker.port},
            "sshd": {"host": sshd.host, "port": sshd.port, "user": sshd.user},
            "postfix": {"address": postfix.address, "port": postfix.port,
                        "config_dir": postfix.config_dir, "maillog": str(postfix.maillog)},
        }
        _write_json(lab_dir / SERVICES_FILE, info)
        print("services: ready", flush=True)
        await stop.wait()
        print("services: stopping", flush=True)


def _control_handler(broker: Mosquitto, sshd: Sshd) -> Handler:
    """The services' control requests: the broker or sshd down (`up: false`) or up."""
    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        op, up = request.get("op"), bool(request.get("up"))
        if op == "broker":
            await asyncio.to_thread(broker.start if up else broker.pause)
        elif op == "sshd" and up:
            if sshd.pid is None:   # not running: start it (a second one would not bind)
                await sshd.start_again()
        elif op == "sshd":
            await sshd.pause()
        else:
            raise ValueError(f"op: use broker or sshd (got {op!r:.40})")
        return {"op": op, "up": up}

    return handle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.lab.services")
    parser.add_argument("--dir", type=Path, required=True, help="the lab's directory")
    parser.add_argument("--remote-ns", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--known-hosts", type=Path, required=True)
    args = parser.parse_args(argv)
    # the launchers make their directories with tempfile: keep them under the lab's dir
    tmp = args.dir / "tmp"
    tmp.mkdir(mode=0o755, exist_ok=True)
    tempfile.tempdir = str(tmp)
    try:
        asyncio.run(serve(args.dir, args.remote_ns, args.key_file, args.known_hosts))
    except Exception as exc:
        print(f"services: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
