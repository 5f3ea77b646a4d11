"""Journald entries over a real datagram socket, JSON lines, secret masking, sd_notify."""

from __future__ import annotations

import io
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from daemon.audit import Auditor
from daemon.model import EventKind, State
from daemon.publish import logs
from daemon.publish.journal import JournalSender, encode
from daemon.publish.sdnotify import Notifier


def parse_journal(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    while data:
        nl = data.index(b"\n")
        line = data[:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            data = data[nl + 1:]
        else:
            (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode()
            data = data[nl + 9 + size + 1:]
    return fields


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "journal.sock"))
    sock.settimeout(2)
    yield sock
    sock.close()
    structlog.reset_defaults()


def test_audit_event_becomes_a_journal_entry_with_queryable_fields(
        journal: socket.socket) -> None:
    logs.configure("journal", "info", site="unixwiz",
                   journal=JournalSender(journal.getsockname()))
    Auditor().emit(EventKind.TRANSITION, "primary down: 0/3 targets",
                   from_state=State.PRIMARY, to_state=State.FAILING_OVER)
    fields = parse_journal(journal.recv(65536))
    assert fields["EVENT"] == "transition"
    assert fields["STATE_FROM"] == "primary"
    assert fields["STATE_TO"] == "failing_over"
    assert fields["REASON"] == "primary down: 0/3 targets"
    assert fields["SITE"] == "unixwiz"
    assert fields["PRIORITY"] == "4"
    assert fields["SEQ"] == "1"
    assert fields["SYSLOG_IDENTIFIER"] == "dslfailover"


def test_multiline_values_use_the_binary_form(journal: socket.socket) -> None:
    JournalSender(journal.getsockname()).send({"MESSAGE": "a\nb", "X": "y"})
    assert parse_journal(journal.recv(65536)) == {"MESSAGE": "a\nb", "X": "y"}
    assert encode({"K": "v"}) == b"K=v\n"


def test_secret_looking_keys_are_masked_in_json_logs() -> None:
    out = io.StringIO()
    logs.configure("json", "info", stream=out)
    structlog.get_logger().info("login", router_password="hunter2", user="admin")
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["router_password"] == "********"
    assert "hunter2" not in out.getvalue()
    structlog.reset_defaults()


def test_sd_notify_sends_ready_and_status(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2)
    try:
        n = Notifier(str(tmp_path / "notify"))
        n.ready("primary")
        assert sock.recv(1024) == b"READY=1\nSTATUS=primary"
        n.watchdog()
        assert sock.recv(1024) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_sd_notify_is_a_noop_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    n.ready("x")  # nothing to send, nothing raised
