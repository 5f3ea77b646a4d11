"""The driver registry and the names the config accepts are the same set."""

from __future__ import annotations

from typing import get_args

from router_drivers import DIALOGUES, DRIVERS, DriverName


def test_driver_names_are_the_registrys_keys() -> None:
    assert set(get_args(DriverName)) == set(DRIVERS)


def test_every_shipped_dialogue_belongs_to_a_registered_driver() -> None:
    assert set(DIALOGUES) <= set(DRIVERS)
