"""`dslfailover check` refuses every dialogue override the driver would refuse later."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.config import ConfigError, parse_config
from tests.harness import config_toml


def config(driver: str, dialogue: dict[str, Any]) -> str:
    return config_toml(site="t", router={"driver": driver, "dialogue": dialogue})


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("netopia-menu", {"edit": {"fields": {"adress": "WAN IP"}}},
     "router.dialogue.edit.fields.adress: unknown key"),
    ("netopia-menu", {"menu_path": ["IP Setup"]}, "router.dialogue.menu_path: unknown key"),
    ("netopia-menu", {"screen": {"max_items": "forty"}},
     "router.dialogue.screen.max_items: must be a number"),
    ("netopia-menu", {"edit": {"path": [{"item": "IP Setup..."}]}},
     "router.dialogue.edit.path[0]: missing title"),
    ("netopia-menu", {"edit": {"path": [{"item": "IP Setup...", "title": "(ip"}]}},
     "router.dialogue.edit.path[0].title: '(ip' is not a valid regular expression"),
    ("netopia-menu", {"save": {"model": "button"}},
     "router.dialogue.save.model: 'button' is not one of escape, item, return"),
    ("netopia-cli", {"commands": {"set_gateway": "set ip gateway {gateway}"}},
     "router.dialogue.commands.set_gateway: unknown key"),
    ("netopia-cli", {"commands": {"set": ["set ip gw {gw}"]}},
     "router.dialogue.commands.set: 'set ip gw {gw}' uses {gw}"),
    ("netopia-cli", {"commands": {"set": "set ip gateway {gateway}"}},
     "router.dialogue.commands.set: must be a list of strings"),
    ("netopia-cli", {"parse": {"interface": "(?P<address>["}},
     "router.dialogue.parse.interface:"),
    ("netopia-cli", {"commands": {"restart": "restart {now}"}},
     "router.dialogue.commands.restart: 'restart {now}' uses {now} (placeholders here: none)"),
    ("dry-run", {"x": 1}, "router.dialogue: the dry-run driver has no"),
]


@pytest.mark.parametrize(("driver", "extra", "why"), BAD,
                         ids=[f"{d}-{i}" for i, (d, _, _) in enumerate(BAD)])
def test_bad_dialogue_override_is_refused_naming_its_path(
        driver: str, extra: dict[str, Any], why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config(driver, extra))
    assert any(why in p for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config("netopia-menu", {"save": {"model": "button", "itme": "Save"}}))
    assert len(info.value.problems) == 2


def test_good_override_passes() -> None:
    cfg = parse_config(config("netopia-menu", {
        "edit": {"path": [{"item": "Advanced...", "title": "(?i)^advanced$"}]},
        "save": {"model": "return"}}))
    assert cfg.router.dialogue["save"]["model"] == "return"
