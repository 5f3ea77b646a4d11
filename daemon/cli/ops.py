"""Operator commands of the CLI: `status` and `failover|failback|hold|resume|verify`.

They talk to the running daemon over its control socket (daemon.control). The socket path
is `[control].socket` from the config, or `--socket PATH` (then no config is read).

`failover`, `failback` and `verify` wait until what they started has ended (the new
state, or the fault and its reason; for `verify` the checks, as `mx verify` prints
them), within `--timeout`; `--no-wait` returns once the daemon accepted the command.

Exit codes (sysexits.h where one fits): 0 done (with --no-wait: accepted); 1 the daemon
refused the command; 3 it ran and failed (a fault, a failed check); 75 still running
when --timeout was over, or the daemon stopped before it ended; 69 no daemon is
listening or it does not answer; 76 its answer made no sense; 77 no permission on the
socket; 78 the config is unusable.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..control.protocol import (
    MAX_WAIT,
    ControlError,
    ControlPermissionError,
    ControlProtocolError,
)
from ..model import Action
from .common import Subcommands, add_command, add_json_arg, control_socket_or_exit, print_json
from .mx import show_verify_dict

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_FAILED = 3
EXIT_PENDING = 75      # EX_TEMPFAIL: accepted, not finished within --timeout
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_PROTOCOL = 76     # EX_PROTOCOL
EXIT_NOPERM = 77       # EX_NOPERM

# Bounds `status`: the daemon answers it from memory at once.
STATUS_TIMEOUT = 10.0
# Bounds a command: the daemon's verdict and, unless --no-wait, the end of what it started.
COMMAND_TIMEOUT = 120.0
# What the socket's timeout adds to a wait: the daemon answers when the wait is over.
ANSWER_MARGIN = 10.0
# The commands whose end is waited for (hold and resume are done when accepted).
WAITED = (Action.FAILOVER, Action.FAILBACK, Action.VERIFY)
# Events shown by `status` (the daemon may send more).
EVENTS_SHOWN = 10

_HELP = {
    Action.FAILOVER: "move the router to the backup circuit now",
    Action.FAILBACK: "move the router back to the primary circuit now",
    Action.HOLD: "pause automation (the router stays where it is)",
    Action.RESUME: "resume automation after a hold",
    Action.VERIFY: "verify the backup MX and the mail path now",
}


def register(sub: Subcommands) -> None:
    p = add_command(sub, "status", cmd_status,
                    help="the running daemon's state (control socket)",
                    description="Ask the running daemon for its state and recent events.")
    _common_args(p, STATUS_TIMEOUT)
    add_json_arg(p, "print the daemon's status as JSON")
    for action in Action:
        p = add_command(sub, action.value, cmd_command, action=action, help=_HELP[action],
                        description=(
            f"Ask the running daemon to {_HELP[action]}. The command, its reason and who "
            "sent it are recorded in the journal and published on MQTT."))
        _common_args(p, COMMAND_TIMEOUT)
        p.add_argument("--reason", metavar="TEXT", default="",
                       help="why (recorded with the command)")
        if action in WAITED:
            p.add_argument("--no-wait", action="store_true",
                           help="return once the daemon accepted the command")
        if action == Action.FAILBACK:
            p.add_argument("--force", action="store_true",
                           help="fail back even onto a primary the monitor sees down")
        add_json_arg(p, "print the daemon's answer as JSON")


def _common_args(p: argparse.ArgumentParser, timeout: float) -> None:
    p.add_argument("--socket", metavar="PATH", type=Path, default=None,
                   help="control socket (default: [control].socket from the config)")
    p.add_argument("--timeout", metavar="SECONDS", type=_seconds, default=timeout,
                   help=f"how long to wait for the daemon (default {timeout:g})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number of seconds") from None
    if not 0 < value <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most "
                                         f"{MAX_WAIT:g} seconds")
    return value


def socket_path(args: argparse.Namespace) -> Path:
    if args.socket is not None:
        return Path(args.socket)
    return control_socket_or_exit(args)


# Most specific first: a ControlTimeout or ControlUnavailable is "no daemon" (69).
_EXIT_FOR: tuple[tuple[type[ControlError], int], ...] = (
    (ControlPermissionError, EXIT_NOPERM),
    (ControlProtocolError, EXIT_PROTOCOL),
    (ControlError, EXIT_UNAVAILABLE),
)


def _ask(path: Path, message: dict[str, Any], timeout: float) -> dict[str, Any] | int:
    """The daemon's answer, or the exit code after printing why there is none."""
    import asyncio

    from ..control.client import request

    try:
        return asyncio.run(request(path, message, timeout=timeout))
    except ControlError as err:
        print(f"dslfailover: {err}", file=sys.stderr)
        return next(code for kind, code in _EXIT_FOR if isinstance(err, kind))


def cmd_status(args: argparse.Namespace) -> int:
    path = socket_path(args)
    answer = _ask(path, {"op": "status"}, args.timeout)
    if isinstance(answer, int):
        return answer
    if not answer.get("ok") or not isinstance(answer.get("status"), dict):
        print(f"dslfailover: the daemon refused status: {answer.get('error', answer)}",
              file=sys.stderr)
        return EXIT_REFUSED
    status: dict[str, Any] = answer["status"]
    if args.json:
        print_json(status)
    else:
        sys.stdout.write(format_status(status, now=datetime.now(UTC)))
    return EXIT_OK


def cmd_command(args: argparse.Namespace) -> int:
    action: Action = args.action
    path = socket_path(args)
    message: dict[str, Any] = {"op": "command", "action": action.value,
                               "reason": args.reason}
    if getattr(args, "force", False):
        message["force"] = True
    wait = action in WAITED and not args.no_wait
    if wait:
        message["wait"] = args.timeout
    answer = _ask(path, message, args.timeout + (ANSWER_MARGIN if wait else 0.0))
    if isinstance(answer, int):
        return answer
    if args.json:
        print_json(answer)
    accepted = answer.get("ok") is True and answer.get("accepted") is True
    if not accepted:
        why = answer.get("detail") or answer.get("error") or "no reason given"
        if not args.json:
            print(f"dslfailover: {action.value} refused: {why}", file=sys.stderr)
        return EXIT_REFUSED
    if not args.json:
        print(f"{action.value}: {answer.get('detail') or 'accepted'}")
    if not wait:
        return EXIT_OK
    return _finished(action, answer.get("finished"), args)


def _finished(action: Action, end: Any, args: argparse.Namespace) -> int:
    """Print how what the command started ended; its exit code."""
    if end is None:
        if not args.json:
            print(f"dslfailover: {action.value} still running after {args.timeout:g}s; "
                  "see `dslfailover status`", file=sys.stderr)
        return EXIT_PENDING
    if not isinstance(end, dict) or not isinstance(end.get("ok"), bool):
        print(f"dslfailover: the daemon's answer made no sense: finished={end!r:.200}",
              file=sys.stderr)
        return EXIT_PROTOCOL
    if end.get("stopping") is True:
        if not args.json:
            print(f"dslfailover: {action.value} not finished: {end.get('detail')} (state "
                  f"{end.get('state')}); see `dslfailover status` once it runs again",
                  file=sys.stderr)
        return EXIT_PENDING
    if not args.json:
        report = end.get("report")
        if action == Action.VERIFY and isinstance(report, dict) and report.get("checks"):
            show_verify_dict(report)
        else:
            state, detail = end.get("state", "?"), end.get("detail") or ""
            print(f"{action.value} {'done' if end['ok'] else 'FAILED'}: state {state}"
                  + (f" ({detail})" if detail else ""))
    return EXIT_OK if end["ok"] else EXIT_FAILED


def _age(since: str, now: datetime) -> str:
    try:
        at = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    seconds = int((now - at).total_seconds())
    if seconds < 0:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f" ({seconds // size} {unit} ago)"
    return f" ({seconds} s ago)"


def _event_line(event: Any) -> str:
    if not isinstance(event, dict):
        return f"  (unreadable event: {event!r:.80})"
    kind = event.get("kind", "?")
    head = f"  {event.get('at', '?')}  #{event.get('seq', '?')} {kind}"
    if event.get("from") or event.get("to"):
        head += f" {event.get('from') or '-'} -> {event.get('to') or '-'}"
    reason = event.get("reason")
    return f"{head}: {reason}" if reason else head


def _extras(status: dict[str, Any]) -> list[str]:
    """The daemon's optional extras (pending actions, timers, probe targets, MQTT)."""
    lines = []
    pending = [f"{k.removesuffix('_action')} {status[k]}" for k in ("router_action", "mx_action")
               if status.get(k)]
    if pending:
        lines.append(f"in progress:   {', '.join(pending)}")
    for key, label in (("hold_down", "hold-down:"), ("retry_in", "retry in:")):
        value = status.get(key)
        if isinstance(value, int | float) and value > 0:
            lines.append(f"{label:<15}{value:.0f} s")
    counters = status.get("counters")
    if isinstance(counters, dict) and counters:
        lines.append("counters:      " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    mqtt = status.get("mqtt")
    if isinstance(mqtt, dict) and "connected" in mqtt:
        lines.append(f"mqtt:          {'connected' if mqtt['connected'] else 'not connected'}")
    proc = status.get("process")
    if isinstance(proc, dict) and isinstance(proc.get("rss_kb"), int):
        lines.append(f"process:       rss {proc['rss_kb'] / 1024:.1f} MB, "
                     f"{proc.get('open_fds')} fds, {proc.get('threads')} threads, "
                     f"{proc.get('tasks')} tasks")
    targets = status.get("targets")
    if isinstance(targets, dict) and targets:
        lines.append("probe targets:")
        for name, t in targets.items():
            if not isinstance(t, dict):
                continue
            if t.get("paused") is True:
                lines.append(f"  {name:<16} paused (not probed on this circuit)")
                continue
            loss, rtt = t.get("loss"), t.get("rtt_ms")
            loss_text = f"{loss:.0%}" if isinstance(loss, int | float) else "?"
            rtt_text = f"{rtt:.1f} ms" if isinstance(rtt, int | float) else "-"
            lines.append(f"  {name:<16} loss {loss_text:>4}  rtt {rtt_text}")
    return lines


def format_status(status: dict[str, Any], *, now: datetime) -> str:
    """The readable `dslfailover status`: state and health, then the last events."""
    def get(key: str) -> str:
        value = status.get(key)
        return "unknown" if value is None else str(value)

    lines = []
    if status.get("site"):
        lines.append(f"site:          {status['site']}")
    since = status.get("since")
    lines += [
        f"state:         {get('state')}",
        f"circuit:       {get('circuit')}",
        f"primary link:  {get('primary_link')}",
        f"mail path:     {get('mail_path')}",
        f"backup link:   {get('backup_link')}",
        f"dns:           {get('dns')}",
        f"since:         {get('since')}{_age(since, now) if isinstance(since, str) else ''}",
        f"reason:        {status.get('reason') or '-'}",
    ]
    if status.get("version"):
        lines.append(f"version:       {status['version']}")
    lines += _extras(status)
    events = status.get("events")
    if isinstance(events, list) and events:
        lines.append(f"last events ({min(len(events), EVENTS_SHOWN)} of {len(events)}):")
        lines += [_event_line(e) for e in events[-EVENTS_SHOWN:]]
    elif isinstance(events, list):
        lines.append("last events:   none")
    return "\n".join(lines) + "\n"
