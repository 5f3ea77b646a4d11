"""A real mosquitto broker on a loopback port, for tests, the demo and the lab.

`Mosquitto` writes its own config into a private temp dir (listener on one loopback
address and port, persistence off, log to a file in that dir; anonymous access or a
password file made with `mosquitto_passwd -b`), starts `/usr/sbin/mosquitto -c CONF` in a
process group of its own, and waits until the broker says it is running. `kill()` stops the
process the hard way (a broker crash) but keeps the port and config, so `start()` brings
the same broker back on the same port; `pause()` is a clean stop that keeps them too
(with `persistent`, its sessions as well); `stop()` also removes the temp dir. It cleans up
after a failed start too. With `netns`, the broker runs inside that network namespace
(`ip netns exec NS ...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from .launcher import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"  # noqa: S105 (a program, not a password)

# Bounds the wait for a freshly started broker to log that it is running (it needs well
# under a second; a busy 2-core CI box gets the rest).
START_TIMEOUT = 10.0
# Bounds the wait for the broker process to exit after SIGTERM, before SIGKILL.
STOP_TIMEOUT = 5.0
# Bounds `mosquitto_passwd -b` (it hashes one password; instant in practice).
PASSWD_TIMEOUT = 10.0


class BrokerError(Exception):
    """The broker could not be started; the message carries the tail of its log."""


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """Server side TLS for the listener: PEM files the broker reads."""

    certfile: Path
    keyfile: Path


class Mosquitto:
    """One mosquitto process. Reusable: start, kill, start again on the same port."""

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1",
                 users: Mapping[str, str] | None = None, tls: BrokerTls | None = None,
                 netns: str | None = None, binary: str = MOSQUITTO,
                 persistent: bool = False) -> None:
        self.host = host
        # persistent: sessions, subscriptions and queued QoS 1 messages survive a
        # `pause()` and `start()` (a clean broker restart), as with a production broker
        self._persistent = persistent
        self.port = port if port is not None else free_port(host)
        self._users = dict(users or {})
        self._tls = tls
        self._netns = netns
        self._binary = binary
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return None if self._dir is None else self._dir / "mosquitto.log"

    def log_tail(self, limit: int = 2000) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_bytes()[-limit:].decode("utf-8", "replace")

    def _prepare(self) -> Path:
        if self._dir is not None:
            return self._dir
        self._dir = Path(tempfile.mkdtemp(prefix="dslfailover-mosquitto-"))
        lines = [
            f"listener {self.port} {self.host}",
            *(["persistence true", f"persistence_location {self._dir}/"]
              if self._persistent else ["persistence false"]),
            # as root mosquitto would drop to the `mosquitto` user, which cannot read
            # our private temp dir; run as whoever started us instead
            *(["user root"] if os.geteuid() == 0 else []),
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        if self._users:
            pwfile = self._dir / "passwd"
            pwfile.touch(mode=0o600)
            for user, password in self._users.items():
                # -b takes the password on the command line: acceptable for a lab broker
                # whose passwords are test values, never for a production secret
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pwfile), user, password],
                               check=True, capture_output=True, timeout=PASSWD_TIMEOUT)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if self._tls is not None:
            lines += [f"certfile {self._tls.certfile}", f"keyfile {self._tls.keyfile}"]
        (self._dir / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self._dir

    def start(self) -> None:
        """Start the broker (again) and wait until it runs; on failure clean up and raise."""
        if self.running:
            return
        try:
            workdir = self._prepare()
            log = workdir / "mosquitto.log"
            argv = [self._binary, "-c", str(workdir / "mosquitto.conf")]
            if self._netns is not None:
                argv = ["ip", "netns", "exec", self._netns, *argv]
            self._log_offset = log.stat().st_size if log.exists() else 0
            with log.open("ab") as out:
                self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                              stderr=out, start_new_session=True)
            self._wait_running()
        except BaseException:
            self.stop()
            raise

    def _wait_running(self) -> None:
        assert self._proc is not None and self._dir is not None
        log = self._dir / "mosquitto.log"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto on {self.host}:{self.port} exited with "
                                  f"{self._proc.returncode}; log tail:\n{self.log_tail()}")
            text = log.read_bytes()[self._log_offset:]
            if b" running" in text:  # "mosquitto version 2.0.11 running"
                return
            time.sleep(0.02)
        raise BrokerError(f"mosquitto on {self.host}:{self.port} did not start within "
                          f"{START_TIMEOUT}s; log tail:\n{self.log_tail()}")

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the broker (a crash: no clean goodbye to clients); keep port and config."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait()
        self._proc = None

    def pause(self) -> None:
        """Stop the broker cleanly (SIGTERM, then SIGKILL) but keep port, config and
        (when persistent) its saved sessions: `start()` brings the same broker back."""
        if self._proc is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and remove its temp dir."""
        try:
            self.pause()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def restart(self) -> None:
        """Kill and start again on the same port (clients see a broker outage)."""
        self.kill()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)
