"""The shipped examples/router-*.toml are valid configs whose dialogues load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from daemon.config import parse_config
from router_drivers import WanConfig
from router_drivers.dialogue import load
from tests.harness import config_dict

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("router-*.toml"))
DIALOGUE = {"netopia-menu": "netopia_menu", "netopia-cli": "netopia_cli", "ssh": "ssh"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_router_section_is_a_valid_config(path: Path) -> None:
    # the example's [router] in a config of its own (site and primary are required)
    doc = {**config_dict(site="example", mqtt=None, router=None,
                         primary={"targets": ["127.0.0.1"], "interval": None, "timeout": None}),
           "router": tomllib.loads(path.read_text())["router"]}
    cfg = parse_config(tomli_w.dumps(doc), str(path))
    assert cfg.router.primary.wan() != cfg.router.backup.wan()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_dialogue_merges_and_its_templates_fill_in(path: Path) -> None:
    router = tomllib.loads(path.read_text())["router"]
    d = load(DIALOGUE[router["driver"]], router.get("dialogue", {}))
    wan = WanConfig.parse("198.51.100.10", "255.255.255.248", "198.51.100.9")
    values = {**wan.as_dict(), "prefixlen": "29", "interface": "eth1"}
    if router["driver"] == "netopia-menu":
        assert d.steps("edit", "path") and d.text("edit", "fields", "address")
        return
    filled: list[str] = []
    for key, value in d.data["commands"].items():
        if isinstance(value, list):
            filled += d.templates("commands", key, **values)
        else:
            filled.append(d.template("commands", key, **values))
    assert filled
    for command in filled:
        assert not any(f"{{{name}}}" in command for name in values)


def test_there_are_examples_for_each_console_and_ssh_flavour() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"router-netopia-menu.toml", "router-netopia-cli.toml", "router-ssh-linux.toml",
            "router-ssh-openwrt.toml", "router-ssh-vyos.toml"} <= names


def test_dialogue_example_in_the_commented_main_config_is_valid() -> None:
    """The `# [router.dialogue...]` lines of examples/dslfailover.toml, uncommented."""
    text = (EXAMPLES[0].parent / "dslfailover.toml").read_text()
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("# [router.dialogue") or line.startswith("# [[router.dialogue"):
            inside = True
        elif not line.startswith("# "):
            inside = False
        if inside:
            lines.append(line[2:])
    assert lines
    override = tomllib.loads("\n".join(lines))["router"]["dialogue"]
    assert load("netopia_menu", override).text("edit", "fields", "address") == "WAN IP Address"
