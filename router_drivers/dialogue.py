"""A console's dialogue as data: defaults shipped as TOML, user overrides merged over them.

Each driver's script (menu paths, titles, labels, prompts, command templates, parse
patterns) lives in `router_drivers/dialogues/<name>.toml`. `RouterSettings.dialogue`
(the config's `[router.dialogue]`) is merged over it key by key, so a user can rename one
label without repeating the rest. `validate()` is the one validator: unknown keys, wrong
types, patterns that do not compile, templates with unknown placeholders and values
outside a key's choices are named as `router.dialogue.<path>: why`; `dslfailover check`
and the drivers both use it, so a bad override is refused before the daemon runs.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .errors import RouterError

ROOT = "router.dialogue"
WAN_VARS = frozenset({"address", "netmask", "gateway", "prefixlen"})
# the keys of one step of a menu path ([[edit.path]], [[status.path]], [[restart.path]])
STEP_KEYS = {"item": str, "title": str, "optional": bool}


class DialogueError(RouterError):
    """The dialogue data (shipped or overridden) is malformed."""


@dataclass(frozen=True)
class Spec:
    """What the string values of one dialogue are: patterns, templates, choices."""

    patterns: frozenset[str] = frozenset()           # dotted paths; "x.path[]" = each step
    templates: Mapping[str, frozenset[str]] = field(default_factory=dict)  # path -> names
    choices: Mapping[str, frozenset[str]] = field(default_factory=dict)


SPECS: dict[str, Spec] = {
    "netopia_menu": Spec(
        patterns=frozenset({
            "login.failed", "login.locked", "screen.main_title", "save.confirm_title",
            "save.prompt", "restart.confirm", "restart.asked", "errors.pattern",
            "edit.path[]", "status.path[]", "restart.path[]"}),
        choices={"save.model": frozenset({"item", "escape", "return"}),
                 "restart.model": frozenset({"menu", "asked", "none"})}),
    "netopia_cli": Spec(
        patterns=frozenset({
            "login.username_prompt", "login.password_prompt", "login.failed", "login.locked",
            "prompts.shell", "prompts.config", "parse.interface", "parse.default_route",
            "parse.saved_address", "parse.saved_netmask", "parse.saved_gateway",
            "answers.paging", "answers.confirm", "errors.pattern"}),
        templates={"commands.set": WAN_VARS, **{f"commands.{k}": frozenset() for k in (
            "configure", "save", "exit", "restart", "read_interfaces", "read_routes",
            "read_saved", "logout")}}),
    "ssh": Spec(
        patterns=frozenset({"shell.prompt", "parse.address", "parse.gateway",
                            "errors.pattern"}),
        templates={"commands.read": frozenset({"interface"}),
                   "commands.apply": WAN_VARS | {"interface"},
                   "commands.save": WAN_VARS | {"interface"}}),
}


@dataclass(frozen=True, slots=True)
class PathStep:
    """One step of a menu path: the item to select, the title of the screen it opens."""

    item: str
    title: re.Pattern[str]
    optional: bool = False


def _type_name(value: Any) -> str:
    return {str: "string", bool: "true/false", int: "number", float: "number",
            list: "list", dict: "table"}.get(type(value), type(value).__name__)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str,
           problems: list[str]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        path = f"{where}.{key}"
        if key not in base:
            problems.append(f"{path}: unknown key (known here: {', '.join(sorted(base))})")
            continue
        default = base[key]
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                problems.append(f"{path}: must be a table, got {_type_name(value)}")
                continue
            out[key] = _merge(default, value, path, problems)
        elif isinstance(default, list) and default and isinstance(default[0], Mapping):
            out[key] = _steps(value, path, problems)
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{path}: must be a list of strings, got {value!r}")
                continue
            out[key] = value
        elif isinstance(default, bool) or isinstance(value, bool):
            if type(value) is not type(default):
                problems.append(f"{path}: must be {_type_name(default)}, "
                                f"got {_type_name(value)}")
                continue
            out[key] = value
        elif isinstance(default, int | float):
            if not isinstance(value, int | float):
                problems.append(f"{path}: must be a number, got {_type_name(value)}")
                continue
            out[key] = value
        elif not isinstance(value, str):
            problems.append(f"{path}: must be a string, got {_type_name(value)}")
        else:
            out[key] = value
    return out


def _steps(value: Any, path: str, problems: list[str]) -> list[dict[str, Any]]:
    """A menu path: a list of tables {item, title, optional}."""
    if not isinstance(value, list) or not value:
        problems.append(f"{path}: must be a non-empty list of {{item, title}} tables")
        return []
    out: list[dict[str, Any]] = []
    for i, step in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(step, Mapping):
            problems.append(f"{where}: must be a table {{item = ..., title = ...}}, "
                            f"got {step!r}")
            continue
        for key in step:
            if key not in STEP_KEYS:
                problems.append(f"{where}.{key}: unknown key (known here: item, optional, "
                                "title)")
        for key, kind in STEP_KEYS.items():
            if key in step and not isinstance(step[key], kind):
                problems.append(f"{where}.{key}: must be {_type_name(kind())}")
        for key in ("item", "title"):
            if key not in step:
                problems.append(f"{where}: missing {key}")
        out.append(dict(step))
    return out


def _at(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _check_values(spec: Spec, data: Mapping[str, Any], problems: list[str]) -> None:
    for dotted in sorted(spec.patterns):
        if dotted.endswith("[]"):
            steps = _at(data, dotted[:-2]) or []
            sources = [(f"{dotted[:-2]}[{i}].title", s.get("title")) for i, s in
                       enumerate(steps) if isinstance(s, Mapping)]
        else:
            sources = [(dotted, _at(data, dotted))]
        for where, source in sources:
            if not isinstance(source, str):
                continue
            try:
                re.compile(source, re.MULTILINE)
            except re.error as exc:
                problems.append(f"{ROOT}.{where}: {source!r} is not a valid regular "
                                f"expression ({exc})")
    for dotted, names in sorted(spec.templates.items()):
        value = _at(data, dotted)
        for source in value if isinstance(value, list) else [value]:
            if not isinstance(source, str):
                continue
            try:
                used = {f[1] for f in string.Formatter().parse(source) if f[1] is not None}
            except ValueError as exc:
                problems.append(f"{ROOT}.{dotted}: {source!r} is not a valid template ({exc})")
                continue
            unknown = sorted(u for u in used if u not in names)
            if unknown:
                known = ", ".join("{" + n + "}" for n in sorted(names)) or "none"
                problems.append(f"{ROOT}.{dotted}: {source!r} uses "
                                f"{', '.join('{' + u + '}' for u in unknown)} "
                                f"(placeholders here: {known})")
    for dotted, allowed in sorted(spec.choices.items()):
        value = _at(data, dotted)
        if isinstance(value, str) and value not in allowed:
            problems.append(f"{ROOT}.{dotted}: {value!r} is not one of "
                            f"{', '.join(sorted(allowed))}")


@cache
def shipped(name: str) -> dict[str, Any]:
    """The shipped dialogue `name`, as parsed from its TOML."""
    text = resources.files("router_drivers").joinpath("dialogues", f"{name}.toml").read_text(
        encoding="utf-8")
    return tomllib.loads(text)


def validate(name: str, override: Mapping[str, Any] | None = None
             ) -> tuple[dict[str, Any], list[str]]:
    """The merged dialogue and every problem with it, as `router.dialogue.<path>: why`."""
    problems: list[str] = []
    data = _merge(shipped(name), override or {}, ROOT, problems)
    _check_values(SPECS.get(name, Spec()), data, problems)
    return data, problems


def load(name: str, override: Mapping[str, Any] | None = None) -> Dialogue:
    """The shipped dialogue `name` with `override` merged over it; refused when invalid."""
    data, problems = validate(name, override)
    if problems:
        raise DialogueError("dialogue", "; ".join(problems))
    return Dialogue(name, data)


def restarts(d: Dialogue) -> bool:
    """Whether the console this dialogue drives runs a saved change only after a restart
    (the menu's `restart.model`, the CLI's `commands.restart`); the drivers and `check`
    both ask here."""
    if d.name == "netopia_menu":
        return d.text("restart", "model") != "none"
    if d.name == "netopia_cli":
        return bool(d.text("commands", "restart"))
    return False


class Dialogue:
    """Typed access to a merged dialogue: `d.text("commands", "save")`."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self.name = name
        self.data = data

    def _get(self, *path: str) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                raise DialogueError("dialogue", f"{self.name}: missing {'.'.join(path)}")
            node = node[part]
        return node

    def text(self, *path: str) -> str:
        value = self._get(*path)
        if not isinstance(value, str):
            raise DialogueError("dialogue", f"{self.name}: {'.'.join(path)} must be a string")
        return value

    def texts(self, *path: str) -> list[str]:
        value = self._get(*path)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DialogueError(
                "dialogue", f"{self.name}: {'.'.join(path)} must be a list of strings")
        return list(value)

    def flag(self, *path: str) -> bool:
        value = self._get(*path)
        if not isinstance(value, bool):
            raise DialogueError("dialogue", f"{self.name}: {'.'.join(path)} must be true/false")
        return value

    def number(self, *path: str) -> float:
        value = self._get(*path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DialogueError("dialogue", f"{self.name}: {'.'.join(path)} must be a number")
        return float(value)

    def pattern(self, *path: str) -> re.Pattern[str]:
        source = self.text(*path)
        try:
            return re.compile(source, re.MULTILINE)
        except re.error as exc:
            raise DialogueError(
                "dialogue", f"{self.name}: {'.'.join(path)} is not a valid regex: {exc}"
            ) from None

    def steps(self, *path: str) -> list[PathStep]:
        """A menu path ([[edit.path]] ...) as steps with compiled titles."""
        value = self._get(*path)
        return [PathStep(s["item"], re.compile(s["title"]), bool(s.get("optional", False)))
                for s in value]

    def template(self, *path: str, **values: str) -> str:
        return self._format(self.text(*path), ".".join(path), values)

    def templates(self, *path: str, **values: str) -> list[str]:
        where = ".".join(path)
        return [self._format(t, where, values) for t in self.texts(*path)]

    def _format(self, source: str, where: str, values: dict[str, str]) -> str:
        try:
            return source.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            names = ", ".join("{" + k + "}" for k in values)
            raise DialogueError(
                "dialogue", f"{self.name}: {where} = {source!r} is not a valid "
                f"template ({exc!r}; available: {names})") from None
