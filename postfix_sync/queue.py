"""Reading `postqueue -j` (one JSON object per queued message, Postfix ≥ 3.1), pure."""

from __future__ import annotations

import json

from .errors import MxCommandError


def deferred_for(output: str, domain: str) -> int:
    """How many messages in the deferred queue have a recipient in `domain`."""
    domain = domain.lower()
    count = 0
    for number, line in enumerate(output.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MxCommandError("postqueue -j", f"line {number}: not JSON: {exc.msg}",
                                 seen=line) from None
        if not isinstance(msg, dict) or not isinstance(msg.get("recipients", []), list):
            raise MxCommandError("postqueue -j", f"line {number}: not a queue entry",
                                 seen=line)
        if msg.get("queue_name") != "deferred":
            continue
        for rcpt in msg.get("recipients", []):
            address = str(rcpt.get("address", "")) if isinstance(rcpt, dict) else ""
            if address.lower().rpartition("@")[2] == domain:
                count += 1
                break
    return count
