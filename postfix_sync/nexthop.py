"""Postfix transport nexthops (`transport:nexthop`), parsed and compared by meaning (pure).

Semantics from transport(5) and smtp(8):
- `smtp:[host]` connects to host itself; `smtp:host` looks up MX records for host first.
  So `smtp:[192.168.7.254]:25` and `smtp:192.168.7.254:25` are different destinations.
- Without a port the transport's default applies: 25 for smtp/relay, 24 for lmtp.
  So `smtp:[ip]` and `smtp:[ip]:25` are the same destination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PORTS = {"smtp": 25, "relay": 25, "lmtp": 24}

_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?$")


class NexthopError(ValueError):
    """Not something Postfix would accept as transport:nexthop."""


@dataclass(frozen=True, slots=True)
class Nexthop:
    transport: str
    host: str          # lowercased; "" when the nexthop is empty (use the recipient domain)
    port: int | None   # as written; None when absent
    bracketed: bool    # [host]: no MX lookup

    @property
    def effective_port(self) -> int | None:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.transport)

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.bracketed else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.transport}:{host}{port}"


def _port(text: str, whole: str) -> int | None:
    if text == "":
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise NexthopError(f"{whole!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_nexthop(text: str) -> Nexthop:
    whole = text.strip()
    if not whole or any(c.isspace() for c in whole):
        raise NexthopError(f"{text!r} is not transport:nexthop")
    transport, sep, rest = whole.partition(":")
    if not sep:
        raise NexthopError(f"{whole!r} has no ':' (expected transport:nexthop)")
    match = _BRACKETED.match(rest)
    if match:
        return Nexthop(transport, match["host"].lower(), _port(match["port"] or "", whole),
                       True)
    if "[" in rest or "]" in rest:
        raise NexthopError(f"{whole!r}: unbalanced [brackets]")
    host, _, port = rest.partition(":")
    return Nexthop(transport, host.lower(), _port(port, whole), False)


def compare_nexthops(expected: str, actual: str) -> tuple[bool, str]:
    """(same destination?, why not). `expected` is ours and must parse; a bad `actual`
    is a mismatch with the reason."""
    want = parse_nexthop(expected)
    try:
        got = parse_nexthop(actual)
    except NexthopError as exc:
        return False, f"unusable nexthop: {exc}"
    if got.transport != want.transport:
        return False, (f"{actual!r} uses transport {got.transport!r}, "
                       f"expected {want.transport!r}")
    if got.host != want.host:
        return False, f"{actual!r} goes to {got.host or '(recipient domain)'}, " \
                      f"expected {want.host}"
    if got.bracketed != want.bracketed:
        if want.bracketed:
            return False, (f"{actual!r} has no [brackets]: Postfix would look up MX records "
                           f"for {got.host} instead of connecting to it")
        return False, f"{actual!r} has [brackets]: Postfix would skip the MX lookup"
    if got.effective_port != want.effective_port:
        return False, (f"{actual!r} uses port {got.effective_port}, "
                       f"expected {want.effective_port}")
    return True, f"{actual!r} is equivalent to {expected!r}"


def probe_target(nexthop: str) -> tuple[str, int]:
    """Host and port the mail_path probe connects to, from our nexthop."""
    hop = parse_nexthop(nexthop)
    port = hop.effective_port
    if not hop.host or port is None:
        raise NexthopError(f"{nexthop!r} names no host and port to probe")
    return hop.host, port
