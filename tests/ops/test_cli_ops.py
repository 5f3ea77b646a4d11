"""`dslfailover status` and the operator commands against a real ControlServer."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon.cli import main
from daemon.cli.ops import WAITED
from daemon.model import Action
from tests.harness import daemon_config

from .conftest import Recorder, server_in_thread

STATUS = {
    "site": "unixwiz",
    "state": "backup",
    "circuit": "backup",
    "primary_link": "down",
    "mail_path": "ok",
    "since": "2026-11-25T03:59:58.250Z",
    "reason": "primary down: 3/3 targets lost for 4 rounds",
    "seq": 12,
    "version": "0.1.0",
    "targets": {"203.0.113.1": {"ok": False, "loss": 1.0, "rtt_ms": None},
                "192.0.2.53": {"ok": True, "loss": 0.05, "rtt_ms": 12.5},
                "198.51.100.7": {"ok": None, "loss": None, "rtt_ms": None, "paused": True}},
    "mqtt": {"connected": True},
    "process": {"rss_kb": 50176, "open_fds": 14, "threads": 2, "tasks": 9},
    "events": [
        {"seq": 11, "at": "2026-11-25T03:59:55.000Z", "kind": "transition",
         "from": "primary", "to": "failing_over", "reason": "primary down", "detail": {}},
        {"seq": 12, "at": "2026-11-25T03:59:58.250Z", "kind": "transition",
         "from": "failing_over", "to": "backup", "reason": "mail path verified",
         "detail": {}},
    ],
}


@pytest.fixture(autouse=True)
def server_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    # The server runs in this process: keep its log lines out of the CLI's stdout.
    with structlog.testing.capture_logs() as logs:
        yield logs


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "control.sock"


@pytest.fixture
def config(tmp_path: Path, sock: Path) -> Path:
    return daemon_config(tmp_path, site="unixwiz", control={"socket": str(sock)})


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # load_or_exit() exits 78 on a bad config
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_status_prints_a_readable_summary(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.status = STATUS
    with server_in_thread(recorder, sock):
        code, out, _ = run(["status", "-c", str(config)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert "state:         backup" in lines
    assert "circuit:       backup" in lines
    assert "primary link:  down" in lines
    assert "mail path:     ok" in lines
    assert any(line.startswith("since:         2026-11-25T03:59:58.250Z (") for line in lines)
    assert "reason:        primary down: 3/3 targets lost for 4 rounds" in lines
    assert "  203.0.113.1      loss 100%  rtt -" in lines
    assert "  192.0.2.53       loss   5%  rtt 12.5 ms" in lines
    assert "  198.51.100.7     paused (not probed on this circuit)" in lines
    assert "mqtt:          connected" in lines
    assert "process:       rss 49.0 MB, 14 fds, 2 threads, 9 tasks" in lines
    assert ("  2026-11-25T03:59:58.250Z  #12 transition failing_over -> backup: "
            "mail path verified") in lines


def test_status_json_prints_the_daemons_status(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.status = STATUS
    with server_in_thread(recorder, sock):
        code, out, _ = run(["status", "--json", "-c", str(config)], capsys)
    assert code == 0
    assert json.loads(out) == STATUS


@pytest.mark.parametrize("action", list(Action))
def test_accepted_command_exits_0_and_reaches_the_daemon(
        recorder: Recorder, config: Path, sock: Path, action: Action,
        capsys: pytest.CaptureFixture[str]) -> None:
    no_wait = ["--no-wait"] if action in WAITED else []
    with server_in_thread(recorder, sock):
        code, out, _ = run([action.value, "--reason", "ISP maintenance", *no_wait,
                            "-c", str(config)], capsys)
    assert code == 0
    assert out == f"{action.value}: queued\n"
    [cmd] = recorder.submitted
    assert (cmd.action, cmd.reason, cmd.force) == (action, "ISP maintenance", False)
    assert cmd.source.startswith("control uid=")
    assert recorder.waits == [None]   # answered on acceptance


def finished(ok: bool, state: str, detail: str, **more: Any) -> dict[str, Any]:
    return {"accepted": True, "detail": "accepted", "state": "failing_over",
            "finished": {"ok": ok, "state": state, "detail": detail, **more}}


def test_a_move_waits_for_its_end_within_the_timeout_and_tells_it(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.verdict = finished(True, "backup", "router on the backup circuit")
    with server_in_thread(recorder, sock):
        code, out, _ = run(["failover", "--timeout", "30", "-c", str(config)], capsys)
    assert code == 0
    assert out.splitlines()[-1] == "failover done: state backup (router on the backup circuit)"
    assert recorder.waits == [30.0]


def test_a_move_that_ends_in_fault_exits_3_with_the_reason(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.verdict = finished(False, "fault", "apply backup failed: router timed out")
    with server_in_thread(recorder, sock):
        code, out, _ = run(["failback", "-c", str(config)], capsys)
    assert code == 3
    assert "failback FAILED: state fault (apply backup failed: router timed out)" in out


def test_a_move_still_running_after_the_timeout_exits_75(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.verdict = {"accepted": True, "detail": "accepted", "finished": None}
    with server_in_thread(recorder, sock):
        code, _, err = run(["failover", "--timeout", "5", "-c", str(config)], capsys)
    assert code == 75
    assert "failover still running after 5s" in err


def test_verify_waits_and_prints_the_checks_as_mx_verify_does(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    checks = [{"name": "transport_map", "ok": True, "detail": "smtp:[10.9.0.25]:25"},
              {"name": "mail_path", "ok": False, "detail": "connect: timed out"}]
    recorder.verdict = finished(False, "backup", "mail_path: connect: timed out",
                                report={"ok": False, "checks": checks})
    with server_in_thread(recorder, sock):
        code, out, _ = run(["verify", "-c", str(config)], capsys)
    assert code == 3
    assert out.splitlines()[1:] == [
        "transport_map  ok    smtp:[10.9.0.25]:25",
        "mail_path      FAIL  connect: timed out",
        "backup MX: NOT ready (1 of 2 checks failed)"]


@pytest.mark.parametrize("timeout", ["0", "-5", "7200", "soon"])
def test_a_timeout_the_daemon_would_refuse_is_a_usage_error(
        config: Path, timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["failover", "--timeout", timeout, "-c", str(config)], capsys)
    assert code == 2
    assert f"argument --timeout: {timeout}:" in err


def test_failback_force_reaches_the_daemon(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with server_in_thread(recorder, sock):
        run(["failback", "--force", "--no-wait", "-c", str(config)], capsys)
    [cmd] = recorder.submitted
    assert (cmd.action, cmd.force) == (Action.FAILBACK, True)


def test_refused_command_exits_1_with_the_daemons_reason(
        recorder: Recorder, config: Path, sock: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    recorder.verdict = {"accepted": False, "detail": "held: resume first"}
    with server_in_thread(recorder, sock):
        code, _, err = run(["failover", "-c", str(config)], capsys)
    assert code == 1
    assert "failover refused: held: resume first" in err


def test_command_without_a_daemon_exits_69(
        config: Path, sock: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["hold", "-c", str(config)], capsys)
    assert code == 69
    assert f"no daemon is listening on {sock}" in err


def test_status_without_a_daemon_exits_69(
        config: Path, sock: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status", "-c", str(config)], capsys)
    assert code == 69
    assert "no daemon is listening" in err


def test_bad_config_exits_78_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = daemon_config(tmp_path, "bad.toml", control={"socket": 5})
    code, _, err = run(["status", "-c", str(bad)], capsys)
    assert code == 78
    assert "control.socket:" in err


def test_status_without_a_config_says_where_it_looked_and_what_to_give(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DSLFAILOVER_CONFIG", str(tmp_path / "none.toml"))
    code, _, err = run(["status"], capsys)
    assert code == 78
    assert err == (f"dslfailover: no config at {tmp_path / 'none.toml'} (give -c FILE or "
                   "set $DSLFAILOVER_CONFIG, or --socket PATH for the daemon's control "
                   "socket)\n")


def test_socket_option_needs_no_config(
        recorder: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "other.sock"
    recorder.status = {"state": "primary"}
    with server_in_thread(recorder, sock):
        code, out, _ = run(["status", "--json", "--socket", str(sock),
                            "-c", str(tmp_path / "missing.toml")], capsys)
    assert code == 0
    assert json.loads(out) == {"state": "primary"}


def test_daemon_that_does_not_answer_exits_69_after_the_timeout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(sock))
        hung.listen(1)  # connections wait in the backlog; nobody ever answers
        code, _, err = run(["status", "--socket", str(sock), "--timeout", "0.3"], capsys)
    assert code == 69
    assert "did not answer within 0.3s" in err


def test_answer_that_is_not_json_exits_76(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "odd.sock"
    with socket.socket(socket.AF_UNIX) as odd:
        odd.bind(str(sock))
        odd.listen(1)

        def answer_garbage() -> None:
            conn, _ = odd.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        code, _, err = run(["status", "--socket", str(sock)], capsys)
        thread.join(5)
    assert code == 76
    assert "answer" in err
    assert "is not JSON: 'HTTP/1.0 200 OK" in err
