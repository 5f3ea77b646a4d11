"""`dslfailover check` refuses every dialogue override the driver would refuse later."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError, parse_config

BASE = """site = "t"
[primary]
targets = ["127.0.0.1"]
[router]
driver = "{driver}"
[router.primary]
address = "10.91.0.2"
netmask = "255.255.255.248"
gateway = "10.91.0.1"
[router.backup]
address = "10.92.0.10"
netmask = "255.255.255.248"
gateway = "10.92.0.9"
"""

BAD = [
    ("netopia-menu", '[router.dialogue.edit.fields]\nadress = "WAN IP"\n',
     "router.dialogue.edit.fields.adress: unknown key"),
    ("netopia-menu", '[router.dialogue]\nmenu_path = ["IP Setup"]\n',
     "router.dialogue.menu_path: unknown key"),
    ("netopia-menu", '[router.dialogue.screen]\nmax_items = "forty"\n',
     "router.dialogue.screen.max_items: must be a number"),
    ("netopia-menu", '[[router.dialogue.edit.path]]\nitem = "IP Setup..."\n',
     "router.dialogue.edit.path[0]: missing title"),
    ("netopia-menu", '[[router.dialogue.edit.path]]\nitem = "IP Setup..."\ntitle = "(ip"\n',
     "router.dialogue.edit.path[0].title: '(ip' is not a valid regular expression"),
    ("netopia-menu", '[router.dialogue.save]\nmodel = "button"\n',
     "router.dialogue.save.model: 'button' is not one of escape, item, return"),
    ("netopia-cli", '[router.dialogue.commands]\nset_gateway = "set ip gateway {gateway}"\n',
     "router.dialogue.commands.set_gateway: unknown key"),
    ("netopia-cli", '[router.dialogue.commands]\nset = ["set ip gw {gw}"]\n',
     "router.dialogue.commands.set: 'set ip gw {gw}' uses {gw}"),
    ("netopia-cli", '[router.dialogue.commands]\nset = "set ip gateway {gateway}"\n',
     "router.dialogue.commands.set: must be a list of strings"),
    ("netopia-cli", '[router.dialogue.parse]\ninterface = "(?P<address>["\n',
     "router.dialogue.parse.interface:"),
    ("netopia-cli", '[router.dialogue.commands]\nrestart = "restart {now}"\n',
     "router.dialogue.commands.restart: 'restart {now}' uses {now} (placeholders here: none)"),
    ("dry-run", '[router.dialogue]\nx = 1\n', "router.dialogue: the dry-run driver has no"),
]


@pytest.mark.parametrize(("driver", "extra", "why"), BAD,
                         ids=[f"{d}-{i}" for i, (d, _, _) in enumerate(BAD)])
def test_bad_dialogue_override_is_refused_naming_its_path(driver: str, extra: str,
                                                          why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE.format(driver=driver) + extra)
    assert any(why in p for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    extra = ('[router.dialogue.save]\nmodel = "button"\nitme = "Save"\n')
    with pytest.raises(ConfigError) as info:
        parse_config(BASE.format(driver="netopia-menu") + extra)
    assert len(info.value.problems) == 2


def test_good_override_passes() -> None:
    extra = ('[[router.dialogue.edit.path]]\nitem = "Advanced..."\ntitle = "(?i)^advanced$"\n'
             '[router.dialogue.save]\nmodel = "return"\n')
    cfg = parse_config(BASE.format(driver="netopia-menu") + extra)
    assert cfg.router.dialogue["save"]["model"] == "return"
