"""Counting deferred mail for the domain from `postqueue -j` output."""

from __future__ import annotations

import json

import pytest

from postfix_sync import MxCommandError
from postfix_sync.queue import deferred_for


def _msg(queue: str, *rcpts: str) -> str:
    return json.dumps({"queue_name": queue, "queue_id": "ABC", "recipients":
                       [{"address": r, "delay_reason": "connect refused"} for r in rcpts]})


def test_counts_deferred_messages_with_a_recipient_in_the_domain() -> None:
    out = "\n".join([_msg("deferred", "a@unixwiz.net", "b@UNIXWIZ.NET"),
                     _msg("deferred", "c@example.org"),
                     _msg("active", "d@unixwiz.net"),
                     _msg("deferred", "e@example.org", "f@unixwiz.net")])
    assert deferred_for(out, "unixwiz.net") == 2


def test_subdomain_recipients_are_not_the_domain() -> None:
    assert deferred_for(_msg("deferred", "a@mail.unixwiz.net"), "unixwiz.net") == 0


def test_empty_queue_is_zero() -> None:
    assert deferred_for("", "unixwiz.net") == 0


def test_garbage_is_an_error_naming_the_line() -> None:
    with pytest.raises(MxCommandError, match="line 2: not JSON"):
        deferred_for(_msg("deferred", "a@unixwiz.net") + "\nMail queue is empty\n",
                     "unixwiz.net")
