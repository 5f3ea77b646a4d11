"""A console's dialogue as data: defaults shipped as TOML, user overrides merged over them.

Each driver's script (menu path, labels, prompts, command templates, parse patterns) lives
in `router_drivers/dialogues/<name>.toml`. `RouterSettings.dialogue` (from the config's
`[router.dialogue]`) is merged over it key by key, so a user can rename one label without
repeating the rest. Unknown keys are refused: a typo must not silently do nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from .errors import RouterError


class DialogueError(RouterError):
    """The dialogue data (shipped or overridden) is malformed."""


def merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`override` over `base`, recursively for tables; keys must exist in `base`."""
    out = dict(base)
    for key, value in override.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            known = ", ".join(sorted(base))
            raise DialogueError("dialogue", f"{path}: unknown key (known here: {known})")
        if isinstance(base[key], Mapping):
            if not isinstance(value, Mapping):
                raise DialogueError("dialogue", f"{path} must be a table")
            out[key] = merge(base[key], value, path)
        else:
            if type(value) is not type(base[key]):
                raise DialogueError(
                    "dialogue", f"{path} must be a {type(base[key]).__name__}, "
                    f"got {type(value).__name__}")
            out[key] = value
    return out


def load(name: str, override: Mapping[str, Any] | None = None) -> Dialogue:
    """The shipped dialogue `name` with `override` merged over it."""
    text = resources.files("router_drivers").joinpath("dialogues", f"{name}.toml").read_text(
        encoding="utf-8")
    data = tomllib.loads(text)
    # a user's override comes from the config's [router.dialogue]: name it that way
    return Dialogue(name, merge(data, override or {}, "router.dialogue"))


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
