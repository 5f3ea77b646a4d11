"""A minimal journald client: the native protocol over the journal's datagram socket.

Why not python-systemd: it needs libsystemd headers and a compiler at install time, and
we send a handful of fields. The protocol is small and documented (systemd's
"Native Journal Protocol"): KEY=VALUE lines, or KEY\\n<u64 LE length>VALUE\\n for values
with a newline.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"

# syslog priorities as journald wants them in PRIORITY=
PRIORITY = {"critical": 2, "error": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}


def under_journald() -> bool:
    """True when our stderr is connected to the journal (systemd sets JOURNAL_STREAM)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def encode(fields: Mapping[str, object]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        name = key.upper()
        data = str(value).encode("utf-8", errors="replace")
        if b"\n" in data:
            out += name.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode("ascii") + b"=" + data + b"\n"
    return bytes(out)


def journal_reachable(path: str = JOURNAL_SOCKET) -> bool:
    """Whether a journal listens on `path` (a datagram socket there that takes a connect)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


class JournalSender:
    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, fields: Mapping[str, object]) -> None:
        # A lost log line must never stop the daemon: errors are swallowed here
        # (the JSON/console fallback on stderr still has the line under systemd).
        with contextlib.suppress(OSError):
            self._sock.sendto(encode(fields), self.path)

    def close(self) -> None:
        self._sock.close()
