"""Fuzzing every parser fed from outside: router CLI output and screens, Postfix maps and
nexthops. Any input gives a result or the package's own error; never a crash."""

from __future__ import annotations

import contextlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from postfix_sync import MxMapError
from postfix_sync.maps import decode_source, parse_map, parse_map_refs, parse_relay_domains
from postfix_sync.nexthop import NexthopError, compare_nexthops, parse_nexthop
from router_drivers import RouterError
from router_drivers.parsers import parse_cli_wan, parse_menu_wan
from router_drivers.screen import ScreenView

INTERFACE = re.compile(r"^\s*ethernet B\s+(?P<address>\d+\.\d+\.\d+\.\d+)\s+"
                       r"(?P<netmask>\d+\.\d+\.\d+\.\d+)", re.MULTILINE)
ROUTE = re.compile(r"^\s*0\.0\.0\.0/0\.0\.0\.0\s+(?P<gateway>\d+\.\d+\.\d+\.\d+)\s+.*\bDefault\b",
                   re.MULTILINE)
LABELS = {"address": "Ethernet B IP Address", "netmask": "Ethernet B Subnet Mask",
          "gateway": "Default IP Gateway"}

octet = st.integers(0, 999).map(str)
dotted = st.tuples(octet, octet, octet, octet).map(".".join)
# text close to what the router prints, so the fuzzer reaches past the first regex
cli_lines = st.one_of(
    st.builds(lambda a, m: f"ethernet B     {a}   {m}   1500 up", dotted, dotted),
    st.builds(lambda g: f"0.0.0.0/0.0.0.0   {g}   ethernet B   Default", dotted),
    st.text(max_size=60),
)
SETTLE = 50


@settings(max_examples=300, deadline=None)
@given(st.lists(cli_lines, max_size=6), st.lists(cli_lines, max_size=6))
def test_cli_output_gives_a_wan_config_or_a_router_error(ifaces: list[str],
                                                         routes: list[str]) -> None:
    try:
        wan = parse_cli_wan("\n".join(ifaces), "\n".join(routes), INTERFACE, ROUTE)
    except RouterError as err:
        assert err.step in ("read interfaces", "read routes")
    else:
        assert str(wan)  # printable even with an odd netmask


screen_text = st.lists(
    st.one_of(
        st.builds(lambda lab, v: f"  {lab}: {v}", st.sampled_from(list(LABELS.values())),
                  st.one_of(dotted, st.text(max_size=15))),
        st.text(max_size=80),
        st.sampled_from(["\x1b[7m", "\x1b[0m", "\x1b[2J", "\x1b[H", "\x1b[10;5H", "\r\n"]),
    ), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(screen_text)
def test_menu_screens_give_a_wan_config_or_a_router_error(raw: str) -> None:
    view = ScreenView.render(raw)
    view.fields()
    view.title()
    try:
        wan = parse_menu_wan(view, LABELS)
    except RouterError as err:
        assert err.step == "read edit screen"
    else:
        assert str(wan)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_map_sources_parse_or_name_the_file_and_line(data: bytes) -> None:
    try:
        text = decode_source(data, "/etc/postfix/transport")
    except MxMapError as err:
        assert "/etc/postfix/transport line " in err.message
        return
    source = parse_map(text, "/etc/postfix/transport")
    assert "".join(source.lines) == text  # nothing lost: repair rewrites from these lines
    for entry in source.entries:
        assert entry.key == entry.key.lower()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_nexthops_compare_or_raise_a_nexthop_error(a: str, b: str) -> None:
    for text in (a, b):
        with contextlib.suppress(NexthopError):
            parse_nexthop(text)
    try:
        same, why = compare_nexthops(a, b)
    except NexthopError:
        return
    assert isinstance(same, bool) and why


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_postconf_values_never_crash(value: str) -> None:
    with contextlib.suppress(MxMapError):
        parse_map_refs(value)
    parse_relay_domains(value)
