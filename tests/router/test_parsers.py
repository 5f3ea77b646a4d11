"""Parsers on recorded router output (tests/fixtures/router/<case>/, napalm style).

Menu screens are the raw bytes (escape codes and fragments) recorded from the emulator
and rendered with pyte here exactly as the driver does; `expected.json` holds the result
or the error the parser must give.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router_drivers import RouterParseError, WanConfig
from router_drivers.dialogue import load
from router_drivers.iproute import parse_ip_json
from router_drivers.parsers import parse_cli_wan, parse_menu_wan, parse_saved
from router_drivers.screen import ScreenView, moved_from
from router_drivers.ssh import parse_ssh_wan

FIXTURES = Path(__file__).parent.parent / "fixtures" / "router"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def _parse(case: Path, kind: str) -> WanConfig:
    if kind == "cli":
        d = load("netopia_cli")
        return parse_cli_wan((case / "interfaces.txt").read_text(),
                             (case / "routes.txt").read_text(),
                             d.pattern("parse", "interface"), d.pattern("parse", "default_route"))
    if kind == "menu":
        d = load("netopia_menu")
        view = ScreenView.render((case / "screen.raw").read_text(encoding="latin-1"))
        return parse_menu_wan(view, {k: d.text("edit", "fields", k) for k in
                                     ("address", "netmask", "gateway")})
    if kind == "menu_status":  # what the router runs: the status screen, read by label
        d = load("netopia_menu")
        view = ScreenView.render((case / "screen.raw").read_text(encoding="latin-1"))
        return parse_menu_wan(view, {k: d.text("status", "fields", k) for k in
                                     ("address", "netmask", "gateway")}, "status screen")
    if kind == "cli_saved":  # what the router saves: `view ip` in config mode
        d = load("netopia_cli")
        return parse_saved((case / "saved.txt").read_text(), {
            k: d.pattern("parse", f"saved_{k}") for k in ("address", "netmask", "gateway")})
    if kind == "linux":
        return parse_ip_json("wan0", (case / "addr.json").read_text(),
                             (case / "route.json").read_text())
    d = load("ssh")
    return parse_ssh_wan((case / "output.txt").read_text(), d.text("parse", "address"),
                         d.text("parse", "gateway"))


@pytest.mark.parametrize("name", CASES)
def test_parser_gives_the_recorded_result(name: str) -> None:
    case = FIXTURES / name
    expected: dict[str, Any] = json.loads((case / "expected.json").read_text())
    if "error" in expected:
        with pytest.raises(RouterParseError) as info:
            _parse(case, expected["kind"])
        assert expected["error"] in str(info.value)
    else:
        assert _parse(case, expected["kind"]) == WanConfig.parse(**expected["wan"])


@pytest.mark.parametrize("name", [c for c in CASES if c.startswith("menu_")])
def test_screen_title_highlight_and_status_are_read_by_label(name: str) -> None:
    case = FIXTURES / name
    expected = json.loads((case / "expected.json").read_text())
    view = ScreenView.render((case / "screen.raw").read_text(encoding="latin-1"))
    assert view.title() == expected["title"]
    highlight = view.highlight()
    if "highlight" in expected:
        assert highlight is not None
        assert highlight.label == expected["highlight"]
        assert highlight.complete
    if "status" in expected:
        assert view.contains(expected["status"])


def test_half_drawn_screen_has_no_footer_yet() -> None:
    raw = (FIXTURES / "menu_half_drawn" / "screen.raw").read_text(encoding="latin-1")
    assert not ScreenView.render(raw).contains("Return/Enter accepts")


def test_cli_parse_error_shows_what_was_read() -> None:
    d = load("netopia_cli")
    with pytest.raises(RouterParseError, match="no line for the WAN interface") as info:
        parse_cli_wan("Unknown command: netstat -i\r\n", "", d.pattern("parse", "interface"),
                      d.pattern("parse", "default_route"))
    assert "Unknown command" in info.value.seen


def test_ip_json_without_an_address_is_a_parse_error() -> None:
    with pytest.raises(RouterParseError, match="wan0 has no global IPv4 address"):
        parse_ip_json("wan0", '[{"ifname": "wan0", "addr_info": []}]', "[]")


def test_title_in_reverse_video_is_not_taken_for_the_highlight() -> None:
    raw = ("\x1b[2J\x1b[2;30H\x1b[7m Main Menu \x1b[0m"
           "\x1b[5;10HEasy Setup...\x1b[6;10H\x1b[7mSystem Configuration...\x1b[0m")
    highlight = ScreenView.render(raw).highlight()
    assert highlight is not None
    assert highlight.label == "System Configuration..."


def test_two_highlight_bars_mid_redraw_are_no_highlight_yet() -> None:
    raw = ("\x1b[2J\x1b[2;30HMain Menu"
           "\x1b[5;10H\x1b[7mEasy Setup...\x1b[0m\x1b[6;10H\x1b[7mSystem Configuration...\x1b[0m")
    assert ScreenView.render(raw).highlight() is None


def test_leftover_of_an_overwritten_bar_is_not_a_move_to_another_item() -> None:
    before = ScreenView.render("\x1b[2J\x1b[2;30HIP Setup"
                               "\x1b[8;11HEthernet B Subnet Mask:\x1b[8;45H\x1b[7m255.255.255.248")
    hl = before.highlight()
    assert hl is not None
    # the console starts redrawing the old bar in normal video; 14 spaces arrived so far
    during = ScreenView.render("\x1b[2J\x1b[2;30HIP Setup"
                               "\x1b[8;11HEthernet B Subnet Mask:\x1b[8;45H\x1b[7m255.255.255.248"
                               "\x1b[0m\x1b[8;45H" + " " * 14)
    leftover = during.highlight()
    assert leftover is not None and leftover.value == "8"
    assert not moved_from(hl.row, hl.label)(during)
