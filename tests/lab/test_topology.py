"""The lab's plan as data: names, rules and the daemon config it writes (no root needed)."""

from __future__ import annotations

import pytest

from daemon.config import parse_config
from daemon.lab import rekey
from daemon.lab.labconfig import ConfigPaths, daemon_config_toml
from daemon.lab.netns import LabError, parse_ping
from daemon.lab.topology import (
    BACKUP,
    IFNAMSIZ,
    PRIMARY,
    TARGETS,
    TUNNEL_ROUTER,
    Topology,
    check_lab_id,
    lab_ids,
)


def _paths(tmp: str = "/run/x") -> ConfigPaths:
    from pathlib import Path
    base = Path(tmp)
    return ConfigPaths(base / "state", base / "pw", base / "key", base / "kh", base / "sock")


def test_every_interface_name_fits_the_kernel_limit() -> None:
    topo = Topology("abcdefghij")
    names = {n for lk in topo.links for n in (lk.name, lk.peer)} | {"br0", "tun0"}
    assert all(len(n) <= IFNAMSIZ for n in names)


def test_namespace_names_carry_the_lab_id() -> None:
    topo = Topology("t1")
    assert all(ns.startswith("dslf-t1-") for ns in topo.namespaces)
    assert len(set(topo.namespaces)) == 7


@pytest.mark.parametrize("bad", ["", "UPPER", "has-dash", "elevenchars", "a b"])
def test_lab_id_rejects_names_that_would_not_be_safe(bad: str) -> None:
    with pytest.raises(ValueError, match="lab id"):
        check_lab_id(bad)


def test_lab_config_passes_the_daemon_config_validation() -> None:
    cfg = parse_config(daemon_config_toml(Topology("t1"), _paths()), "lab")
    assert cfg.router.primary.wan() == PRIMARY.wan
    assert cfg.router.backup.wan() == BACKUP.wan


@pytest.mark.parametrize("restart", [2.0, 20.0, 120.0])
def test_lab_config_router_timeouts_cover_the_router_restart(restart: float) -> None:
    cfg = parse_config(daemon_config_toml(Topology("t1"), _paths(), router_restart=restart),
                       "lab")
    assert cfg.router.restart_timeout >= restart + 20
    # an apply may restart twice (a put-back after a mismatch) and still fit
    assert cfg.router.action_timeout >= 2 * cfg.router.restart_timeout + 30
    assert cfg.router.live_proof


def test_lab_config_proves_the_backup_through_the_internet_targets_not_the_isp1_gateway(
        ) -> None:
    from daemon.model import Circuit
    from daemon.wiring import proof_plans

    cfg = parse_config(daemon_config_toml(Topology("t1"), _paths()), "lab")
    plan = proof_plans(cfg)[Circuit.BACKUP]
    assert plan.gateway == BACKUP.gateway.ip
    assert plan.far == TARGETS


def test_lab_config_lists_the_isp1_gateway_first_then_the_internet_targets() -> None:
    cfg = parse_config(daemon_config_toml(Topology("t1"), _paths()), "lab")
    assert cfg.primary.targets == [PRIMARY.gateway.ip, *TARGETS]


def test_lab_config_points_the_backup_mx_nexthop_at_the_router_tunnel_address() -> None:
    cfg = parse_config(daemon_config_toml(Topology("t1"), _paths()), "lab")
    assert cfg.backup_mx is not None
    assert cfg.backup_mx.nexthop == f"smtp:[{TUNNEL_ROUTER.ip}]:25"


@pytest.mark.parametrize("pct", [-1, 101])
def test_loss_outside_0_to_100_percent_is_refused(pct: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        Topology("t1").loss_ruleset(pct)


def test_zero_loss_renders_no_drop_rule() -> None:
    assert "drop" not in Topology("t1").loss_ruleset(0)


def test_rekey_command_takes_the_emulator_fields_and_parses_back() -> None:
    template = rekey.rekey_command(Topology("t1"), python="/usr/bin/python3")
    line = template.format(address="10.12.0.2", netmask="255.255.255.248",
                           gateway="10.12.0.1", prefixlen=29)
    argv = line.split()
    assert argv[:3] == ["/usr/bin/python3", "-m", "daemon.lab.rekey"]
    assert "dslf-t1-router" in argv and argv[-1] == "10.12.0.2"


def test_ping_summary_is_parsed_from_iputils_output() -> None:
    out = ("PING 10.30.0.1 (10.30.0.1) 56(84) bytes of data.\n\n"
           "--- 10.30.0.1 ping statistics ---\n"
           "200 packets transmitted, 161 received, 19.5% packet loss, time 1094ms\n"
           "rtt min/avg/max/mdev = 0.030/0.061/0.197/0.020 ms\n")
    count = parse_ping(out)
    assert (count.sent, count.received) == (200, 161)


def test_ping_output_without_summary_is_an_error_showing_the_output() -> None:
    with pytest.raises(LabError, match="connect: Network is unreachable"):
        parse_ping("ping: connect: Network is unreachable\n")


def test_lab_ids_are_found_only_in_names_of_the_lab_pattern() -> None:
    names = ["dslf-t1-inside", "dslf-t1-remote", "dslf-ab2-wan", "dslf-rt-20792-c30b08",
             "dslf-t3-other", "something-else"]
    assert lab_ids(names) == {"t1", "ab2"}
