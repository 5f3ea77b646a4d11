"""Pure parsers of router output into a `WanConfig`; tested on recorded output.

Each raises `RouterParseError` naming what it looked for and showing what it got.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import AddressValueError, IPv4Address

from .base import WanConfig
from .errors import RouterParseError
from .screen import ScreenView


def _address(step: str, what: str, value: str, seen: str) -> IPv4Address:
    """An IPv4 address; a netmask may be printed in hex (0xffffff00), as BSD-style
    `netstat -i` listings do."""
    try:
        if value.lower().startswith("0x"):
            return IPv4Address(int(value, 16))
        return IPv4Address(value)
    except (AddressValueError, ValueError):
        raise RouterParseError(step, f"{what} {value!r} is not an IPv4 address", seen) from None


def parse_cli_wan(interfaces: str, routes: str, interface_re: re.Pattern[str],
                  route_re: re.Pattern[str]) -> WanConfig:
    """WAN config from an interface listing and a route table (SOC OS `netstat -i/-r`)."""
    m = interface_re.search(interfaces)
    if m is None:
        raise RouterParseError("read interfaces", "no line for the WAN interface "
                               f"(pattern {interface_re.pattern!r})", interfaces)
    g = route_re.search(routes)
    if g is None:
        raise RouterParseError("read routes", "no default route "
                               f"(pattern {route_re.pattern!r})", routes)
    return WanConfig(
        _address("read interfaces", "address", m["address"], interfaces),
        _address("read interfaces", "netmask", m["netmask"], interfaces),
        _address("read routes", "gateway", g["gateway"], routes))


def parse_menu_wan(view: ScreenView, labels: Mapping[str, str],
                   what: str = "edit screen") -> WanConfig:
    """WAN config from a menu screen, finding each field by its label."""
    step = f"read {what}"
    values: dict[str, IPv4Address] = {}
    for key in ("address", "netmask", "gateway"):
        raw = view.field(labels[key])
        if raw is None:
            raise RouterParseError(step, f"no field labelled {labels[key]!r} on the screen "
                                   f"{view.headings()} (fields there: "
                                   f"{', '.join(view.fields()) or 'none'})", view.compact())
        values[key] = _address(step, labels[key], raw, view.compact())
    return WanConfig(values["address"], values["netmask"], values["gateway"])


def parse_saved(text: str, patterns: Mapping[str, re.Pattern[str]]) -> WanConfig:
    """WAN config from a saved-config listing, one pattern (named group = key) per value."""
    values: dict[str, IPv4Address] = {}
    for key in ("address", "netmask", "gateway"):
        m = patterns[key].search(text)
        if m is None:
            raise RouterParseError("read saved", f"no saved {key} (pattern "
                                   f"{patterns[key].pattern!r})", text)
        values[key] = _address("read saved", key, m[key], text)
    return WanConfig(values["address"], values["netmask"], values["gateway"])
