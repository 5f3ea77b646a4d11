"""Fuzzing the config parser: any text gives a Config or a ConfigError naming fields."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import ConfigError, parse_config

EXAMPLE = (Path(__file__).parents[2] / "examples" / "dslfailover.toml").read_text()
BASE = tomllib.loads(EXAMPLE)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.lists(st.text(max_size=10), max_size=3))


def to_toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(text, text)
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def outcome(text: str) -> None:
    problems: list[str] = []
    try:
        parse_config(text, "fuzz.toml")
    except ConfigError as err:
        problems = err.problems or [""]  # an error must name at least one problem
    for line in problems:
        field, _, why = line.partition(": ")
        assert field and why, line


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    outcome(text)


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(sorted(k for k, v in BASE.items() if isinstance(v, dict))),
       key=st.text(min_size=1, max_size=12).filter(str.isidentifier), value=scalars)
def test_one_changed_key_in_the_example_never_crashes(section: str, key: str,
                                                     value: Any) -> None:
    keys = [k for k, v in BASE[section].items() if not isinstance(v, dict)]
    lines = EXAMPLE.splitlines()
    # overwrite an existing key half of the time, add an unknown one otherwise
    target = keys[hash(key) % len(keys)] if keys and hash(key) % 2 else key
    out, in_section = [], False
    for line in lines:
        if line.startswith("["):
            in_section = line.strip() == f"[{section}]"
        if in_section and line.split("=")[0].strip() == target:
            continue
        out.append(line)
        if line.strip() == f"[{section}]":
            out.append(f"{target} = {to_toml(value)}")
    outcome("\n".join(out))
