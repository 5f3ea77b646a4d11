"""`dslfailover router explore`: read-only discovery whose proposal drives the unit."""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router_drivers import create_driver
from router_drivers.emulator import RouterState, profile, run_emulator
from router_drivers.explore import explore_cli, explore_menu

from .conftest import BACKUP, PASSWORD, PRIMARY, telnet_settings
from .test_cli_router import cli, write_config

MENU_PROFILES = ["r9100", "r4x", "relabelled"]
# loopback answers in milliseconds: a menu bar that has not moved in 0.3 s never will
FAST = {"screen": {"quiet": 0.3}}


@contextlib.asynccontextmanager
async def on(name: str) -> AsyncIterator[tuple[int, RouterState]]:
    console, options = profile(name, password=PASSWORD)
    async with run_emulator(console, PRIMARY, options=options) as (_, port, state):
        yield port, state


@pytest.mark.parametrize("name", MENU_PROFILES)
async def test_explore_finds_the_wan_fields_and_changes_nothing(name: str) -> None:
    async with on(name) as (port, state):
        found = await explore_menu(telnet_settings("127.0.0.1", port, dialogue=FAST))
    labels = state.options.labels
    assert found.proposal["edit"]["fields"] == labels
    assert found.proposal["status"]["fields"] == state.options.status_labels
    assert found.proposal["edit"]["path"][-1]["item"] == state.options.menu["ipsetup"]
    assert (state.saves, state.restarts, state.received) == (0, 0, [])
    assert PASSWORD not in found.transcript + found.report
    assert "Revert to Factory Defaults" in found.report  # seen, never selected


async def test_explore_records_a_banner_and_the_extra_level() -> None:
    async with on("r4x") as (port, _):
        found = await explore_menu(telnet_settings("127.0.0.1", port, dialogue=FAST))
    assert any("banner on every screen" in n for n in found.notes)
    items = [s["item"] for s in found.proposal["edit"]["path"]]
    assert items == ["System Configuration...", "Network Protocols Setup...", "IP Setup..."]
    assert any("no save item" in n for n in found.notes)  # r4x saves on Escape + Y/N


async def test_explore_never_selects_a_denied_item() -> None:
    async with on("r9100") as (port, state):
        found = await explore_menu(telnet_settings("127.0.0.1", port, dialogue=FAST),
                                   deny=[r"(?i)^quick view"])
    assert "status" not in found.proposal  # Quick View was denied, so not entered
    assert state.restarts == 0


async def test_proposal_fed_back_unchanged_drives_a_relabelled_unit(tmp_path: Path) -> None:
    async with on("relabelled") as (port, state):
        config = write_config(tmp_path, "netopia-menu", port)
        default_apply = await cli("apply", "backup", "-c", str(config))
        assert default_apply[0] == 1  # the shipped labels do not fit this unit
        proposal = tmp_path / "proposal.toml"
        code, out, err = await cli("explore", "-c", str(config), "--out", str(proposal))
        assert code == 0, err
        assert "[router.dialogue.edit.fields]" in out
        config = write_config(tmp_path, "netopia-menu", port,
                              router=tomllib.loads(proposal.read_text())["router"])
        assert (await cli("apply", "backup", "-c", str(config)))[0] == 0
        assert (state.saved, state.runs) == (BACKUP, BACKUP)
        assert (await cli("apply", "primary", "-c", str(config)))[0] == 0
        assert (state.saved, state.runs, state.restarts) == (PRIMARY, PRIMARY, 2)


async def test_explore_of_the_cli_reports_known_keywords_and_parse_matches() -> None:
    async with on("socos") as (port, state):
        found = await explore_cli(telnet_settings("127.0.0.1", port))
        explored = list(state.received)
        driver = create_driver("netopia-cli", telnet_settings("127.0.0.1", port))
        assert await driver.read_wan() == PRIMARY
    notes = "\n".join(found.notes)
    assert "commands.configure 'configure': 'configure' is listed by help" in notes
    assert "parse.interface: matches the output of 'netstat -i'" in notes
    assert state.saves == 0
    assert explored == ["help", "?", "show", "netstat -i", "netstat -r"]
