"""Fuzzing the config parser: any text gives a Config or a ConfigError naming fields."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import ConfigError, parse_config

EXAMPLE = (Path(__file__).parents[2] / "examples" / "dslfailover.toml").read_text()
BASE = tomllib.loads(EXAMPLE)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.lists(st.text(max_size=10), max_size=3))


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
       key=st.text(min_size=1, max_size=12).filter(str.isidentifier), value=scalars,
       overwrite=st.booleans(), pick=st.integers(min_value=0, max_value=10**6))
def test_one_changed_key_in_the_example_never_crashes(section: str, key: str, value: Any,
                                                     overwrite: bool, pick: int) -> None:
    keys = [k for k, v in BASE[section].items() if not isinstance(v, dict)]
    # overwrite an existing key (drawn by hypothesis, so a failure replays whatever
    # PYTHONHASHSEED is), or add an unknown one
    target = keys[pick % len(keys)] if keys and overwrite else key
    doc = copy.deepcopy(BASE)
    doc[section][target] = "None" if value is None else value  # TOML has no null
    outcome(tomli_w.dumps(doc))
