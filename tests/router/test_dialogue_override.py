"""Dialogue data: user overrides from the config change what is sent; bad ones are named."""

from __future__ import annotations

import pytest

from router_drivers import RouterParseError, RouterRefused
from router_drivers.dialogue import DialogueError, load
from router_drivers.emulator.state import DEFAULT_LABELS, DEFAULT_SET_COMMANDS

from .conftest import BACKUP, DriverFactory

WAN_LABEL = "WAN IP Address"
GATEWAY_COMMAND = "set ip default-gateway"
# A CLI that takes GATEWAY_COMMAND for the gateway instead of the default keyword.
OTHER_GATEWAY_COMMAND = {**DEFAULT_SET_COMMANDS, "gateway": GATEWAY_COMMAND}


async def test_menu_with_other_labels_fails_by_default_naming_the_label(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("menu", labels={**DEFAULT_LABELS, "address": WAN_LABEL})
    with pytest.raises(RouterParseError, match="Ethernet B IP Address"):
        await driver.apply_wan(BACKUP)
    assert state.saves == 0


async def test_menu_label_override_from_config_finds_the_field(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver(
        "menu", settings={"dialogue": {"edit": {"fields": {"address": WAN_LABEL}}}},
        labels={**DEFAULT_LABELS, "address": WAN_LABEL})
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert f"{WAN_LABEL} = {BACKUP.address}" in state.received


async def test_menu_path_item_missing_from_the_screen_is_named_with_the_items_seen(
        console_driver: DriverFactory) -> None:
    driver, _ = await console_driver("menu", settings={"dialogue": {"edit": {"path": [
        {"item": "Advanced Setup...", "title": "Advanced Setup"},
        {"item": "IP Setup...", "title": "IP Setup"}]}}})
    with pytest.raises(RouterParseError, match=r"no item labelled 'Advanced Setup\.\.\.'") as info:
        await driver.read_wan()
    assert "System Configuration..." in info.value.message
    assert "Main Menu" in info.value.seen


async def test_cli_with_other_gateway_command_refuses_the_default(
        console_driver: DriverFactory) -> None:
    driver, state = await console_driver("cli", set_commands=OTHER_GATEWAY_COMMAND)
    with pytest.raises(RouterRefused, match="set ip gateway"):
        await driver.apply_wan(BACKUP)
    assert state.saves == 0


async def test_cli_command_override_from_config_is_what_is_sent(
        console_driver: DriverFactory) -> None:
    dialogue = {"commands": {"set": ["set ip ethernet B address {address}",
                                     "set ip ethernet B netmask {netmask}",
                                     GATEWAY_COMMAND + " {gateway}"]}}
    driver, state = await console_driver("cli", settings={"dialogue": dialogue},
                                         set_commands=OTHER_GATEWAY_COMMAND)
    assert await driver.apply_wan(BACKUP) == BACKUP
    assert f"{GATEWAY_COMMAND} {BACKUP.gateway}" in state.received
    assert f"> {GATEWAY_COMMAND} {BACKUP.gateway}" in driver.transcript()


def test_unknown_override_key_is_refused_with_its_path() -> None:
    with pytest.raises(DialogueError,
                       match=r"router\.dialogue\.edit\.fields\.adress: unknown key"):
        load("netopia_menu", {"edit": {"fields": {"adress": "x"}}})


def test_override_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(DialogueError, match=r"commands\.set: must be a list"):
        load("netopia_cli", {"commands": {"set": "set ip gateway {gateway}"}})


def test_template_with_an_unknown_placeholder_is_named() -> None:
    with pytest.raises(DialogueError, match=r"commands\.set: 'set ip gw \{gw\}' uses \{gw\}"):
        load("netopia_cli", {"commands": {"set": ["set ip gw {gw}"]}})


def test_invalid_regex_override_is_named() -> None:
    with pytest.raises(DialogueError, match=r"errors\.pattern: '\(unclosed' is not a valid"):
        load("netopia_cli", {"errors": {"pattern": "(unclosed"}})


@pytest.mark.parametrize("name", ["netopia_menu", "netopia_cli", "ssh"])
def test_shipped_dialogues_load(name: str) -> None:
    assert load(name).data
