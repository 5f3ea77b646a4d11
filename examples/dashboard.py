#!/usr/bin/env python3
"""A terminal dashboard for dslfailover sites, fed by MQTT (DESIGN §7 payloads).

Subscribes to `dslfailover/+/state`, `dslfailover/+/event`, `dslfailover/+/events` and
`dslfailover/+/availability` on one broker and shows, per site: availability, state,
circuit, primary link, mail path, since (with age), reason, and the last N events (from
the retained `events` list at once, then as they come).
A malformed payload is shown as such on its site's row; it never stops the dashboard.

    pip install 'dslfailover[dashboard]'      # rich and aiomqtt; this script needs nothing else
    python examples/dashboard.py --host broker.lan
    python examples/dashboard.py --once       # one snapshot of the retained state, then exit

Sites with a custom `[mqtt].prefix` are shown with `--root PREFIX-WITHOUT-SITE`.
Exit codes: 0; 69 when the broker cannot be reached with --once; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

try:
    import aiomqtt
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text
except ImportError as exc:  # system Python without the extra: say what to install
    sys.exit(f"dashboard: needs rich and aiomqtt ({exc.name} is missing): "
             "pip install 'dslfailover[dashboard]', or run it with the project's "
             ".venv/bin/python")

# Without a terminal (--once into a pipe or a file) rich would wrap at 80 columns.
PIPE_WIDTH = 160

STATES = ("starting", "primary", "failing_over", "backup", "failing_back", "held", "fault")
CIRCUITS = ("primary", "backup", "unknown")
LINKS = ("up", "down", "unknown")
MAIL_PATHS = ("ok", "failing", "unknown")
EVENT_KINDS = ("transition", "action", "probe_alarm", "command")
AVAILABILITY = ("online", "offline")

# Bounds connecting to the broker (TCP, MQTT CONNECT/CONNACK).
CONNECT_TIMEOUT = 5.0
# Reconnect backoff in live mode: first wait and cap (randomized, growing).
RECONNECT_INITIAL = 1.0
RECONNECT_MAX = 30.0
# Longest payload looked at; a state is a few hundred bytes.
MAX_PAYLOAD = 64 * 1024

_STYLE = {"primary": "green", "backup": "yellow", "failing_over": "bold yellow",
          "failing_back": "bold yellow", "held": "cyan", "fault": "bold red",
          "starting": "dim", "up": "green", "down": "red", "ok": "green",
          "failing": "red", "online": "green", "offline": "red"}


class Malformed(ValueError):
    """A payload that does not follow DESIGN §7; the message says what is wrong."""


def _json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise Malformed(f"payload of {len(payload)} bytes is too long")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed("payload is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise Malformed(f"not a JSON object (a {type(data).__name__})")
    return data


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = data.get(key)
    if value not in allowed:
        raise Malformed(f"{key}: {value!r:.40} is not one of {', '.join(allowed)}")
    return str(value)


def _timestamp(data: dict[str, Any], key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise Malformed(f"{key}: missing or not a string")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{key}: {value!r:.40} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SiteState:
    state: str
    circuit: str
    primary_link: str
    mail_path: str
    since: datetime
    reason: str
    seq: int


def parse_state(payload: bytes) -> SiteState:
    data = _json_object(payload)
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise Malformed(f"seq: {seq!r:.40} is not an integer")
    reason = data.get("reason", "")
    return SiteState(
        state=_choice(data, "state", STATES),
        circuit=_choice(data, "circuit", CIRCUITS),
        primary_link=_choice(data, "primary_link", LINKS),
        mail_path=_choice(data, "mail_path", MAIL_PATHS),
        since=_timestamp(data, "since"),
        reason=str(reason),
        seq=seq,
    )


def parse_event(payload: bytes) -> tuple[int | None, str]:
    """An event's seq and one readable line for it."""
    return event_line(_json_object(payload))


def event_line(data: dict[str, Any]) -> tuple[int | None, str]:
    kind = _choice(data, "kind", EVENT_KINDS)
    at = _timestamp(data, "at")
    line = f"{at.astimezone(UTC):%H:%M:%S} #{data.get('seq', '?')} {kind}"
    if data.get("from") or data.get("to"):
        line += f" {data.get('from') or '-'} → {data.get('to') or '-'}"
    if data.get("reason"):
        line += f": {data['reason']}"
    seq = data.get("seq")
    return (seq if isinstance(seq, int) and not isinstance(seq, bool) else None), line


def parse_recent(payload: bytes) -> list[tuple[int | None, str]]:
    """`<site>/events` (retained): the site's last events, oldest first."""
    events = _json_object(payload).get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Malformed("events: not a list of event objects")
    return [event_line(e) for e in events]


def parse_availability(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace").strip()
    if text not in AVAILABILITY:
        raise Malformed(f"{text!r:.40} is not online/offline")
    return text


@dataclass
class SiteView:
    events_kept: int
    availability: str = "?"
    state: SiteState | None = None
    problem: str = ""
    events: deque[Text] = field(default_factory=deque)
    seqs: deque[int | None] = field(default_factory=deque)   # beside `events`

    def add_event(self, line: Text, seq: int | None = None) -> None:
        """An event, unless it is one already shown (the retained list and a live event,
        or an event re-sent after an outage); kept in seq order."""
        if seq is not None and seq in self.seqs:
            return
        at = len(self.seqs)
        while seq is not None and at > 0 and (self.seqs[at - 1] or 0) > seq:
            at -= 1
        self.events.insert(at, line)
        self.seqs.insert(at, seq)
        while len(self.events) > self.events_kept:
            self.events.popleft()
            self.seqs.popleft()


class Board:
    """What the dashboard knows, per site; `handle()` never raises on a bad payload."""

    def __init__(self, events_kept: int) -> None:
        self.events_kept = events_kept
        self.sites: dict[str, SiteView] = {}
        self.status = "connecting"

    def handle(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3:
            return
        site, kind = parts[-2], parts[-1]
        view = self.sites.setdefault(site, SiteView(self.events_kept))
        try:
            if kind == "state":
                view.state = parse_state(payload)
                view.problem = ""
            elif kind == "availability":
                view.availability = parse_availability(payload)
            elif kind == "event":
                seq, line = parse_event(payload)
                view.add_event(Text(line), seq)
            elif kind == "events":
                for seq, line in parse_recent(payload):
                    view.add_event(Text(line), seq)
        except Malformed as bad:
            note = f"malformed {kind} payload: {bad}"
            if kind in ("event", "events"):
                view.add_event(Text(note, style="bold red"))
            else:
                view.problem = note

    def render(self, now: datetime | None = None) -> RenderableType:
        now = now or datetime.now(UTC)
        table = Table(title=f"dslfailover sites ({self.status})", expand=False)
        for name in ("site", "avail", "state", "circuit", "primary link", "mail path",
                     "since", "reason"):
            table.add_column(name, no_wrap=name != "reason")
        for site in sorted(self.sites):
            view = self.sites[site]
            st = view.state
            cells: list[Text] = [Text(site, style="bold"), _styled(view.availability)]
            if st is None:
                cells += [Text("-")] * 5
                reason = Text("")
            else:
                cells += [_styled(st.state), _styled(st.circuit), _styled(st.primary_link),
                          _styled(st.mail_path), Text(f"{st.since:%Y-%m-%d %H:%M:%S}Z "
                                                      f"({_age(st.since, now)})")]
                reason = Text(st.reason)
            if view.problem:
                reason = Text(view.problem, style="bold red")
            table.add_row(*cells, reason)
        parts: list[RenderableType] = [table]
        for site in sorted(self.sites):
            events = self.sites[site].events
            if events:
                parts.append(Text(f"last events of {site}:", style="bold"))
                parts.extend(Text("  ") + line for line in events)
        return Group(*parts)


def _styled(value: str) -> Text:
    return Text(value, style=_STYLE.get(value, ""))


def _age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def topics(root: str) -> list[str]:
    return [f"{root}/+/{kind}" for kind in ("state", "event", "events", "availability")]


def _client(args: argparse.Namespace) -> aiomqtt.Client:
    password = None
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip("\r\n")
    return aiomqtt.Client(hostname=args.host, port=args.port, username=args.username,
                          password=password, timeout=CONNECT_TIMEOUT)


async def _subscribe(client: aiomqtt.Client, args: argparse.Namespace) -> None:
    for topic in topics(args.root):
        await client.subscribe(topic, qos=1)


async def snapshot(args: argparse.Namespace, console: Console) -> int:
    board = Board(args.events)
    try:
        async with _client(args) as client:
            board.status = f"{args.host}:{args.port}"
            await _subscribe(client, args)
            # scripts (and the tests) wait for this line before publishing events
            print(f"dashboard: subscribed on {args.host}:{args.port}", file=sys.stderr,
                  flush=True)
            try:
                async with asyncio.timeout(args.wait):
                    async for message in client.messages:
                        board.handle(str(message.topic), _payload(message.payload))
            except TimeoutError:
                pass  # the wait is over: print what arrived
    except aiomqtt.MqttError as exc:
        print(f"dashboard: cannot reach the broker at {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 69
    if not board.sites:
        console.print(f"no dslfailover site has published on {args.host}:{args.port} "
                      f"under {args.root}/")
        return 0
    console.print(board.render())
    return 0


async def live(args: argparse.Namespace, console: Console) -> int:
    board = Board(args.events)
    delay = RECONNECT_INITIAL
    with Live(console=console, get_renderable=board.render, refresh_per_second=2):
        while True:
            try:
                async with _client(args) as client:
                    board.status = f"{args.host}:{args.port}"
                    delay = RECONNECT_INITIAL
                    await _subscribe(client, args)
                    async for message in client.messages:
                        board.handle(str(message.topic), _payload(message.payload))
            except aiomqtt.MqttError as exc:
                board.status = f"disconnected: {exc}; retrying in {delay:.0f}s"
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, RECONNECT_MAX)


def _payload(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode("utf-8")


def _positive(kind: type[int] | type[float]) -> Any:
    def convert(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
        return value
    return convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--host", default="localhost", help="MQTT broker (default localhost)")
    parser.add_argument("--port", type=_positive(int), default=1883,
                        help="MQTT port (default 1883)")
    parser.add_argument("--username", default=None, help="MQTT user name, if the broker wants one")
    parser.add_argument("--password-file", metavar="FILE", default=None,
                        help="file holding the MQTT password (never on the command line)")
    parser.add_argument("--root", default="dslfailover",
                        help="topic root; sites publish under ROOT/<site>/ (default dslfailover)")
    parser.add_argument("--events", type=_positive(int), default=5,
                        help="events kept per site (default 5)")
    parser.add_argument("--once", action="store_true",
                        help="print one snapshot after --wait seconds and exit")
    parser.add_argument("--wait", type=_positive(float), default=1.0,
                        help="with --once: seconds to collect messages (default 1.0)")
    args = parser.parse_args(argv)
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(width=PIPE_WIDTH) if piped else Console()
    try:
        return asyncio.run(snapshot(args, console) if args.once else live(args, console))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
