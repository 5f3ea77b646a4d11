"""Logging with structlog: journald fields under systemd, JSON lines or console elsewhere.

Every log call is key/value. Audit events (transitions, actions, alarms, commands) carry
`event_kind`, `state_from`, `state_to`, `reason`, `seq`; under systemd they become
journald entries with EVENT, STATE_FROM, STATE_TO, REASON, SEQ and SITE fields, so
`journalctl -u dslfailover EVENT=transition` works. Keys that look secret are masked
here too, as a second line of defence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from .journal import JOURNAL_SOCKET, PRIORITY, JournalSender, journal_reachable, under_journald

_SECRET_WORDS = ("password", "secret", "passphrase", "token", "private_key")

# structlog key -> journald field
_JOURNAL_FIELDS = {
    "event_kind": "EVENT",
    "state_from": "STATE_FROM",
    "state_to": "STATE_TO",
    "reason": "REASON",
    "seq": "SEQ",
    "site": "SITE",
    "target": "TARGET",
    "step": "STEP",
}


def audit_level(_: Any, __: str, event_dict: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    """An audit event's own level (`notice` has no stdlib method) replaces the method's."""
    lvl = event_dict.pop("audit_level", None)
    if lvl is not None:
        event_dict["level"] = lvl
    return event_dict


def mask_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event_dict[key] = "********"
    return event_dict


class JournalRenderer:
    """Sends each entry to journald and drops it (nothing more to render)."""

    def __init__(self, sender: JournalSender, identifier: str = "dslfailover") -> None:
        self.sender = sender
        self.identifier = identifier

    def __call__(self, _: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        message = str(event_dict.pop("event", ""))
        level = str(event_dict.pop("level", method))
        event_dict.pop("timestamp", None)
        fields: dict[str, object] = {
            "MESSAGE": message,
            "PRIORITY": PRIORITY.get(level, 6),
            "SYSLOG_IDENTIFIER": self.identifier,
        }
        extra = []
        for key, value in event_dict.items():
            if key in _JOURNAL_FIELDS:
                fields[_JOURNAL_FIELDS[key]] = value
            else:
                field = "DSLF_" + "".join(c if c.isalnum() else "_" for c in key).upper()
                fields[field] = value
                extra.append(f"{key}={value}")
        if extra and "REASON" not in fields:
            fields["MESSAGE"] = f"{message} " + " ".join(extra)
        self.sender.send(fields)
        raise structlog.DropEvent


def configure(fmt: str, level: str, *, site: str | None = None,
              stream: TextIO | None = None, journal: JournalSender | None = None) -> None:
    """Set up structlog once. `fmt`: auto | journal | json | console."""
    stream = stream or sys.stderr
    asked = fmt
    if fmt == "auto":
        if under_journald():
            fmt = "journal"
        else:
            fmt = "console" if stream.isatty() else "json"
    if fmt == "journal" and journal is None and not journal_reachable(JOURNAL_SOCKET):
        # asked for the journal where there is none: say so once, and log where it shows
        why = "asked for" if asked == "journal" else "under systemd, but"
        print(f"dslfailover: log format {asked}: {why} no journal at {JOURNAL_SOCKET}; "
              "logging JSON lines to stderr instead", file=stream)
        fmt = "json"
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        audit_level,
        mask_secrets,
    ]
    if fmt == "journal":
        processors.append(JournalRenderer(journal or JournalSender()))
    else:
        processors.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
        if fmt == "json":
            processors.append(structlog.processors.format_exc_info)
            processors.append(structlog.processors.JSONRenderer())
        else:
            processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    if site:
        structlog.contextvars.bind_contextvars(site=site)
    # Our libraries and some parts log through stdlib logging: route them into the same
    # pipeline. Third-party libraries (asyncssh is chatty) only from WARNING up.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    root.setLevel(logging.WARNING)
    for name in ("dslfailover", "daemon", "router_drivers", "postfix_sync"):
        logging.getLogger(name).setLevel(level.upper())


class _ToStructlog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        structlog.get_logger().log(record.levelno, message, logger=record.name)
