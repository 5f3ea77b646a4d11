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


# (kind, from, to, detail) -> journald PRIORITY: README "Read the journal"'s table
LEVELS = [
    (EventKind.TRANSITION, State.PRIMARY, State.FAILING_OVER, {}, "4"),
    (EventKind.TRANSITION, State.FAILING_OVER, State.BACKUP, {}, "4"),
    (EventKind.TRANSITION, State.FAILING_OVER, State.FAULT, {}, "3"),
    (EventKind.TRANSITION, State.STARTING, State.PRIMARY, {}, "5"),
    (EventKind.TRANSITION, State.HELD, State.PRIMARY, {}, "5"),
    (EventKind.TRANSITION, State.BACKUP, State.FAILING_BACK, {}, "5"),
    (EventKind.TRANSITION, State.PRIMARY, State.HELD, {}, "5"),
    (EventKind.PROBE_ALARM, None, None, {}, "4"),
    (EventKind.ACTION, None, None, {"ok": True}, "6"),
    (EventKind.ACTION, None, None, {"ok": False}, "3"),
    (EventKind.ACTION, None, None, {"interrupted": "router"}, "4"),
    (EventKind.COMMAND, None, None, {"accepted": True, "source": "mqtt"}, "5"),
    (EventKind.COMMAND, None, None, {"accepted": False, "source": "mqtt"}, "4"),
    (EventKind.COMMAND, None, None, {"accepted": False, "source": "control uid=0"}, "4"),
]


@pytest.mark.parametrize(("kind", "old", "new", "detail", "priority"), LEVELS)
def test_each_kind_of_event_has_its_documented_level_in_the_journal(
        journal: socket.socket, kind: EventKind, old: State | None, new: State | None,
        detail: dict[str, object], priority: str) -> None:
    logs.configure("journal", "info", journal=JournalSender(journal.getsockname()))
    Auditor().emit(kind, "x", from_state=old, to_state=new, detail=dict(detail))
    assert parse_journal(journal.recv(65536))["PRIORITY"] == priority


def test_journal_format_without_a_journal_says_so_once_and_logs_json(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(tmp_path / "no-journal"))
    err = io.StringIO()
    logs.configure("journal", "info", stream=err)
    Auditor().emit(EventKind.PROBE_ALARM, "primary down")
    Auditor().emit(EventKind.PROBE_ALARM, "primary up")
    lines = err.getvalue().splitlines()
    assert [line for line in lines if "no journal" in line] == [lines[0]]
    assert [json.loads(line)["event"] for line in lines[1:]] == ["primary down", "primary up"]
    structlog.reset_defaults()


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
