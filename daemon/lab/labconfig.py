"""The daemon config the lab writes (DESIGN §8 schema), built as a dict and written as TOML
with tomli-w; and the same config with a test's or bench's overrides on top.

`lab up` writes `<lab dir>/dslfailover.toml`; the file opens with two comment lines
(who wrote it, how to run the daemon with it). What each value is for is said here,
beside the dict, not in the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .topology import (
    BACKUP,
    MAIL_DOMAIN,
    MQTT_PORT,
    MX_ADDR,
    PRIMARY,
    ROUTER_LAN_ADDR,
    ROUTER_TELNET_PORT,
    SSH_PORT,
    TARGETS,
    TUNNEL_ROUTER,
    Circuit,
    Topology,
)

Config = dict[str, Any]


@dataclass(frozen=True)
class ConfigPaths:
    """Files the lab config refers to (inside the lab's own directory)."""

    state_dir: Path
    router_password: Path
    mx_key: Path
    mx_known_hosts: Path
    control_socket: Path


def router_timeouts(router_restart: float) -> tuple[float, float]:
    """`router.restart_timeout` and `router.action_timeout` for a router that is away
    `router_restart` seconds when it restarts: the restart wait with room for the
    reconnect, and an apply with room for two restarts (a put-back after a mismatch
    restarts once more) plus the dialogues."""
    restart_timeout = router_restart + 30.0
    return restart_timeout, 2 * restart_timeout + 60.0


def _seconds(value: float) -> int | float:
    # six significant digits, as `%g` writes them (the emulator's --restart-delay gets
    # the router restart with the same precision); whole seconds as TOML integers
    rounded = float(f"{value:g}")
    return int(rounded) if rounded.is_integer() else rounded


def _wan(c: Circuit) -> Config:
    return {"address": str(c.router), "netmask": str(c.gateway.netmask),
            "gateway": str(c.gateway.ip)}


def daemon_config(topo: Topology, paths: ConfigPaths, *, driver: str = "netopia-cli",
                  mx_user: str = "dslfailover", mx_config_dir: str | None = None,
                  router_restart: float = 20.0) -> Config:
    """The daemon's config for this lab, as the dict its TOML file loads to."""
    restart_timeout, action_timeout = router_timeouts(router_restart)
    backup_mx: Config = {
        "host": str(MX_ADDR), "port": SSH_PORT, "user": mx_user,
        "key_file": str(paths.mx_key), "known_hosts": str(paths.mx_known_hosts),
        "domain": MAIL_DOMAIN,
        # the router's tunnel address, as the customer's Postfix sees it
        "nexthop": f"smtp:[{TUNNEL_ROUTER.ip}]:25",
    }
    if mx_config_dir:
        backup_mx["config_dir"] = mx_config_dir
    return {
        "site": f"lab-{topo.lab_id}",
        # the marker: the daemon and `probe` refuse this config outside the lab
        "lab": topo.lab_id,
        "state_dir": str(paths.state_dir),
        # the isp1 gateway first, then targets beyond it on the lab's "internet"
        "primary": {"targets": [str(a) for a in (PRIMARY.gateway.ip, *TARGETS)]},
        # the backup MX's SMTP port, reached from inside only through the tunnel
        "tunnel": {"smtp_host": str(MX_ADDR), "smtp_port": 25},
        "router": {
            "driver": driver, "host": str(ROUTER_LAN_ADDR), "port": ROUTER_TELNET_PORT,
            "password_file": str(paths.router_password),
            # the lab's router restarts to apply a change and is away `router_restart`
            "restart_timeout": _seconds(restart_timeout),
            "action_timeout": _seconds(action_timeout),
            # after the move: the new gateway, then a target on the lab's internet, answer
            "live_proof": True,
            "primary": _wan(PRIMARY),
            "backup": _wan(BACKUP),
        },
        "backup_mx": backup_mx,
        "mqtt": {"host": "127.0.0.1", "port": MQTT_PORT},
        "control": {"socket": str(paths.control_socket)},
        "log": {"format": "console"},
    }


def daemon_config_toml(topo: Topology, paths: ConfigPaths, **options: Any) -> str:
    """The lab's config file: `daemon_config(...)` as TOML under a two-line header."""
    header = (f"# Written by `dslfailover lab up` for lab {topo.lab_id!r}; removed by "
              "`lab down`.\n"
              f"# Run the daemon inside the lab: ip netns exec {topo.ns('inside')} "
              "dslfailover run -c THIS\n")
    return header + tomli_w.dumps(daemon_config(topo, paths, **options))


def with_overrides(config: Mapping[str, Any],
                   overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """`config` with `key = value` set in each named table (`"router.primary"` names a
    nested one); tables that are not there yet are added."""
    result = _copy(config)
    for section, values in overrides.items():
        table = result
        for part in section.split("."):
            table = table.setdefault(part, {})
        table.update(values)
    return result


def _copy(table: Mapping[str, Any]) -> Config:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in table.items()}


def read_toml(path: Path) -> Config:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def write_toml(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
