"""The control socket over a real unix socket: protocol, peer credentials, file handling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from daemon.control import ControlSetupError, ControlUnavailable, request
from daemon.control.protocol import MAX_REQUEST_BYTES
from daemon.control.server import ControlServer
from daemon.model import Action, OperatorCommand
from tests.harness import served, wait_until

from .conftest import Recorder, accepts

# Bounds one raw exchange with the server in these tests.
EXCHANGE_TIMEOUT = 5.0


def serving(server: ControlServer) -> AbstractAsyncContextManager[asyncio.Task[None]]:
    return served(server.serve, lambda: accepts(server.path), "the control server",
                  EXCHANGE_TIMEOUT)


async def raw_exchange(path: Path, data: bytes) -> dict[str, Any]:
    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(data)
        await writer.drain()
        line = await reader.readline()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    result: dict[str, Any] = json.loads(line)
    return result


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "control.sock"


async def test_status_round_trip_returns_the_daemons_status(
        recorder: Recorder, sock_path: Path) -> None:
    recorder.status = {"state": "backup", "circuit": "backup", "seq": 7}
    async with serving(recorder.server(sock_path)):
        answer = await request(sock_path, {"op": "status"})
    assert answer == {"ok": True, "status": {"state": "backup", "circuit": "backup", "seq": 7}}


@pytest.mark.parametrize("action", list(Action))
async def test_command_reaches_submit_with_the_callers_uid_and_pid(
        recorder: Recorder, sock_path: Path, action: Action) -> None:
    async with serving(recorder.server(sock_path)):
        answer = await request(sock_path, {"op": "command", "action": action.value,
                                           "reason": "line test"})
    assert answer == {"ok": True, "accepted": True, "detail": "queued"}
    assert recorder.submitted == [OperatorCommand(
        action=action, reason="line test",
        source=f"control uid={os.getuid()} pid={os.getpid()}")]


async def test_a_command_may_ask_to_wait_for_what_it_starts(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)):
        await request(sock_path, {"op": "command", "action": "failback", "force": True,
                                  "wait": 90})
    assert recorder.waits == [90.0]
    assert recorder.submitted[0].force is True


async def test_refused_command_answers_the_daemons_verdict(
        recorder: Recorder, sock_path: Path) -> None:
    recorder.verdict = {"accepted": False, "detail": "already on backup"}
    async with serving(recorder.server(sock_path)):
        answer = await request(sock_path, {"op": "command", "action": "failover",
                                           "reason": ""})
    assert answer == {"ok": True, "accepted": False, "detail": "already on backup"}


BAD_REQUESTS = {
    "malformed_json": (b'{"op": "status"\n', "not JSON"),
    "not_an_object": (b'["status"]\n', "not a JSON object but an array"),
    "unknown_op": (b'{"op": "reboot"}\n', "op: must be one of status, command"),
    "unknown_action": (b'{"op": "command", "action": "explode", "reason": "x"}\n',
                       "unknown action 'explode'; allowed: failover|failback|hold|resume|verify"),
    "unknown_key": (b'{"op": "command", "action": "hold", "reason": "x", "uid": 0}\n',
                    "unexpected key(s) 'uid'; allowed: action, reason, force"),
    "reason_not_text": (b'{"op": "command", "action": "hold", "reason": 5}\n',
                        "'reason' must be a string, not a number"),
    "reason_with_control_chars": (b'{"op": "command", "action": "hold", '
                                  b'"reason": "a\\u001b[2Jb"}\n',
                                  "'reason' contains control"),
    "reason_too_long": (b'{"op": "command", "action": "hold", "reason": "' + b"r" * 201 + b'"}\n',
                        "'reason' is 201 characters (limit 200)"),
    "duplicate_key": (b'{"op": "command", "action": "hold", "action": "failover"}\n',
                      "key 'action' appears twice"),
    "wait_not_a_number": (b'{"op": "command", "action": "verify", "wait": "long"}\n',
                          "wait: must be a number of seconds, not a string"),
    "wait_too_long": (b'{"op": "command", "action": "verify", "wait": 86400}\n',
                      "wait: must be more than 0 and at most 3600 seconds (got 86400)"),
    "nested_too_deeply": (b"[" * 3000 + b"\n", "nested too deeply"),
    "not_utf8": (b'{"op": "\xff"}\n', "not UTF-8"),
    "oversize_line": (b'{"op": "status", "pad": "' + b"x" * (MAX_REQUEST_BYTES + 10)
                      + b'"}\n', f"longer than {MAX_REQUEST_BYTES} bytes"),
}


@pytest.mark.parametrize(("data", "why"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_bad_request_gets_an_error_and_is_audited(
        recorder: Recorder, sock_path: Path, data: bytes, why: str) -> None:
    async with serving(recorder.server(sock_path)):
        answer = await raw_exchange(sock_path, data)
    assert answer["ok"] is False
    assert why in answer["error"]
    assert len(recorder.rejected) == 1
    assert why in recorder.rejected[0].why
    assert recorder.rejected[0].source == f"control uid={os.getuid()} pid={os.getpid()}"
    assert recorder.submitted == []


async def test_server_serves_the_next_client_after_bad_ones(
        recorder: Recorder, sock_path: Path) -> None:
    recorder.status = {"state": "primary"}
    async with serving(recorder.server(sock_path)):
        for data, _ in BAD_REQUESTS.values():
            await raw_exchange(sock_path, data)
        answer = await request(sock_path, {"op": "status"})
    assert answer == {"ok": True, "status": {"state": "primary"}}
    assert len(recorder.rejected) == len(BAD_REQUESTS)


async def test_audit_excerpt_is_short_and_printable(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)):
        await raw_exchange(sock_path, b'{"op": "\x1b[2J' + b"y" * 1000 + b'"}\n')
    excerpt = recorder.rejected[0].excerpt
    assert len(excerpt) <= 121
    assert excerpt.isprintable()
    assert excerpt.startswith('{"op": "\\x1b[2J')


async def test_silent_client_gets_a_timeout_error(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path, read_timeout=0.2)):
        async with asyncio.timeout(EXCHANGE_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(str(sock_path))
            writer.write(b'{"op": "sta')  # and then nothing more
            await writer.drain()
            line = await reader.readline()
            writer.close()
    answer = json.loads(line)
    assert answer["ok"] is False
    assert "no complete request line within 0.2s" in answer["error"]
    assert [r.excerpt for r in recorder.rejected] == [""]


async def test_client_that_hangs_up_silently_is_not_audited(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock_path))
        answer = await request(sock_path, {"op": "status"})
    assert answer["ok"] is True
    assert recorder.rejected == []


async def test_request_without_trailing_newline_is_answered(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)), asyncio.timeout(EXCHANGE_TIMEOUT):
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        writer.write(b'{"op": "status"}')
        writer.write_eof()
        line = await reader.readline()
        writer.close()
    assert json.loads(line) == {"ok": True, "status": {}}


async def test_submit_that_raises_gets_an_error_and_the_server_goes_on(
        recorder: Recorder, sock_path: Path) -> None:
    async def broken(cmd: OperatorCommand, wait: float | None) -> dict[str, Any]:
        raise RuntimeError("state machine exploded")

    server = ControlServer(sock_path, group=None, status=recorder.get_status, submit=broken,
                           audit_rejected=recorder.audit_rejected)
    async with serving(server):
        answer = await request(sock_path, {"op": "command", "action": "hold", "reason": ""})
        again = await request(sock_path, {"op": "status"})
    assert answer == {"ok": False,
                      "error": "internal error handling hold: state machine exploded"}
    assert again["ok"] is True


async def test_submit_without_a_verdict_is_an_error(
        recorder: Recorder, sock_path: Path) -> None:
    recorder.verdict = {"detail": "forgot accepted"}
    async with serving(recorder.server(sock_path)):
        answer = await request(sock_path, {"op": "command", "action": "hold", "reason": ""})
    assert answer == {"ok": False, "error": "internal error: the daemon gave no verdict"}


async def test_socket_mode_is_0660(recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)):
        mode = sock_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


@pytest.mark.root
async def test_socket_group_is_the_configured_group(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path, group="nogroup")):
        gid = sock_path.stat().st_gid
    assert gid == 65534


async def test_unknown_group_is_a_clear_error_and_creates_nothing(
        recorder: Recorder, sock_path: Path) -> None:
    with pytest.raises(ControlSetupError, match=r"control\.group: no such group 'no-such-grp-x'"):
        await recorder.server(sock_path, group="no-such-grp-x").serve(asyncio.Event())
    assert not sock_path.exists()


async def test_socket_file_is_removed_on_stop(recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)) as task:
        assert sock_path.exists()
    assert task.done()
    assert not sock_path.exists()


async def test_stop_ends_the_server_while_a_client_is_connected(
        recorder: Recorder, sock_path: Path) -> None:
    async with serving(recorder.server(sock_path)) as task:
        _, writer = await asyncio.open_unix_connection(str(sock_path))
    # serving() set stop and waited (bounded) for the task: the silent client did not hold it
    assert task.done()
    writer.close()


async def test_stale_socket_from_a_crashed_daemon_is_replaced(
        recorder: Recorder, sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock_path))
    dead.close()  # the file stays; nobody listens: what a SIGKILLed daemon leaves
    assert sock_path.exists()
    async with serving(recorder.server(sock_path)):
        answer = await request(sock_path, {"op": "status"})
    assert answer["ok"] is True


async def test_live_socket_is_not_stolen(recorder: Recorder, sock_path: Path) -> None:
    other = Recorder(status={"who": "first"})
    async with serving(other.server(sock_path)):
        with pytest.raises(ControlSetupError, match="another daemon is serving"):
            await recorder.server(sock_path).serve(asyncio.Event())
        answer = await request(sock_path, {"op": "status"})
    assert answer == {"ok": True, "status": {"who": "first"}}


async def test_regular_file_at_the_socket_path_is_left_alone(
        recorder: Recorder, sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    sock_path.write_text("precious")
    with pytest.raises(ControlSetupError, match="exists and is not a socket"):
        await recorder.server(sock_path).serve(asyncio.Event())
    assert sock_path.read_text() == "precious"


async def test_request_without_a_daemon_raises_unavailable(sock_path: Path) -> None:
    with pytest.raises(ControlUnavailable, match="no daemon is listening"):
        await request(sock_path, {"op": "status"})


async def test_request_to_a_stale_socket_raises_unavailable(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock_path))
    dead.close()
    with pytest.raises(ControlUnavailable, match="no daemon is listening"):
        await request(sock_path, {"op": "status"})




async def test_socket_file_is_removed_when_the_server_task_is_cancelled(
        recorder: Recorder, sock_path: Path) -> None:
    task = asyncio.create_task(recorder.server(sock_path).serve(asyncio.Event()))
    await wait_until(lambda: accepts(sock_path), EXCHANGE_TIMEOUT, "the control socket")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not sock_path.exists()
