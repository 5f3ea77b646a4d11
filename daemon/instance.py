"""One daemon per state directory, and per broker and MQTT prefix: exclusive locks.

`dslfailover run` takes them first thing after reading its config, before the router,
the control socket, metrics or MQTT: a second daemon on the same state directory (or
the same MQTT prefix) exits at once with EXIT_RUNNING and the pid that holds the lock,
instead of driving the router beside the first one and marking it offline when it stops.

The locks are `flock`s on files that stay: the kernel drops a lock with its process,
so a daemon killed with -9 leaves nothing stale behind. The state directory's lock is
`<state_dir>/daemon.lock`; the prefix's lives beside the control socket (the runtime
directory, `/run/dslfailover` under systemd: the one place the hardened unit may write
besides the state directory), named after the broker and the prefix, so it is seen by
the daemons of this host whose sockets share that directory, as every unit's do. Each
file holds the holder's pid, for the message of the one refused. A lock that cannot be
taken at all (a file owned by another user, a read-only directory) is refused the same
way, with the reason: a restart would not fix it either.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from .config import Config

# EX_CANTCREAT: the daemon cannot create its instance; the unit does not restart on it
# (RestartPreventExitStatus): a restart cannot end the other daemon.
EXIT_RUNNING = 73


class AlreadyRunning(Exception):
    """Another process holds one of the locks: what it stands for, the file, its pid
    (None when the holder has not written it yet)."""

    def __init__(self, what: str, lock: Path, pid: int | None) -> None:
        self.what, self.lock, self.pid = what, lock, pid
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"another daemon is running on {what}: {holder} holds {lock}; "
                         "stop it first (one daemon per state directory and MQTT prefix)")


class LockUnusable(AlreadyRunning):
    """The lock file cannot be opened or written: what, where, and the OS's reason."""

    def __init__(self, what: str, lock: Path, why: str) -> None:
        Exception.__init__(self, f"cannot take the lock for {what}: {lock}: {why}")
        self.what, self.lock, self.pid = what, lock, None


def lock_paths(cfg: Config) -> list[tuple[str, Path]]:
    """What `run` locks for `cfg`: (what it stands for, the lock file)."""
    paths = [(f"state directory {cfg.state_dir}", cfg.state_dir / "daemon.lock")]
    if cfg.mqtt.enabled:
        broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
        name = "mqtt-" + quote(f"{broker}/{cfg.mqtt_prefix}", safe="") + ".lock"
        paths.append((f"MQTT prefix {cfg.mqtt_prefix} on {broker}",
                      cfg.control.socket.parent / name))
    return paths


def _holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None


def _take(what: str, path: Path) -> int:
    """The lock on `path`, as an open descriptor with our pid written in it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no symlink followed: the runtime directory may be a shared one in a test setup
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise LockUnusable(what, path, exc.strerror or str(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise AlreadyRunning(what, path, pid) from None
    except OSError as exc:
        os.close(fd)
        raise LockUnusable(what, path, exc.strerror or str(exc)) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def held(cfg: Config) -> Iterator[None]:
    """Every lock of `cfg` for the block, or AlreadyRunning (none held then)."""
    with contextlib.ExitStack() as stack:
        for what, path in lock_paths(cfg):
            stack.callback(os.close, _take(what, path))
        yield
