"""The config of `[dns]`, `[backup_link]` and `[notify]`: the example's commented tables
are valid once uncommented, and what the daemon would refuse later is refused now."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from daemon.config import ConfigError, parse_config
from tests.harness import config_dict

EXAMPLE = Path(__file__).parents[2] / "examples" / "dslfailover.toml"
DNS = {"primary_mx": "mail.example.net", "backup_mx": "mx1.customer.example",
       "primary_public": ["192.0.2.10"], "domain": "example.net"}


def example_table(name: str) -> dict[str, Any]:
    """The example's `# [name]` table, uncommented (each `# key = value` line)."""
    text = EXAMPLE.read_text()
    block = text[text.index(f"# [{name}]"):].split("\n\n", 1)[0]
    lines = [re.sub(r"^# ", "", line) for line in block.splitlines()[1:]]
    body = "\n".join(line for line in lines if re.match(r"^[a-z_]+ = ", line))
    return tomllib.loads(body)


def problems(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(tomli_w.dumps(config_dict(**sections)))
    return err.value.problems


def test_the_examples_dns_table_is_valid_uncommented() -> None:
    cfg = parse_config(tomli_w.dumps(config_dict(dns=example_table("dns"))))
    assert cfg.dns is not None and cfg.dns_domain == "unixwiz.net"
    assert cfg.dns.backup_mx == "mx1.customer.example"


def test_the_examples_notify_table_is_valid_uncommented() -> None:
    table = example_table("notify")
    cfg = parse_config(tomli_w.dumps(config_dict(notify=table)))
    assert cfg.notify is not None and cfg.notify.quiet_hours == "22:00-07:00"


def test_an_address_where_a_dns_name_belongs_is_refused() -> None:
    (problem,) = problems(dns={**DNS, "backup_mx": "192.0.2.25"})
    assert problem.startswith("dns.backup_mx: an address, not a DNS name")


def test_the_same_host_as_both_mx_is_refused() -> None:
    (problem,) = problems(dns={**DNS, "backup_mx": "MAIL.example.net."})
    assert "primary_mx and backup_mx are the same host (mail.example.net)" in problem


def test_a_public_address_listed_twice_is_refused() -> None:
    (problem,) = problems(dns={**DNS, "primary_public": ["192.0.2.10", "192.0.2.10"]})
    assert "primary_public lists the same address twice" in problem


def test_dns_without_a_domain_needs_the_backup_mx_domain() -> None:
    (problem,) = problems(dns={k: v for k, v in DNS.items() if k != "domain"})
    assert problem.startswith("dns.domain: required without a [backup_mx] section")


def test_a_dns_interval_under_a_minute_is_refused() -> None:
    (problem,) = problems(dns={**DNS, "interval": 5})
    assert problem.startswith("dns.interval:")


@pytest.mark.parametrize("window", ["22-07", "25:00-07:00", "22:00-22:00", "22:00 - 07:00"])
def test_quiet_hours_that_are_no_window_are_refused(window: str) -> None:
    (problem,) = problems(notify={"urls_file": "n.urls", "quiet_hours": window})
    assert problem.startswith("notify.quiet_hours:")


def test_backup_link_targets_are_addresses() -> None:
    (problem,) = problems(backup_link={"targets": ["far.example.net"]})
    assert problem.startswith("backup_link.targets[0]:")
