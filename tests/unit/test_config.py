"""Config validation and `dslfailover check`: every bad file names the field and why."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from daemon.cli import main
from daemon.config import ConfigError, load_config, load_secrets, parse_config
from tests.harness import merged

EXAMPLE = Path(__file__).parents[2] / "examples" / "dslfailover.toml"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example with its placeholder secret files beside it."""
    for name in ("dslfailover.toml", "router.password", "id_ed25519", "known_hosts"):
        shutil.copy(EXAMPLE.parent / name, tmp_path / name)
    return tmp_path / "dslfailover.toml"


def example_with(**changes: Any) -> dict[str, Any]:
    """The example as a dict with `changes` laid over it (tables merged key by key)."""
    return merged(tomllib.loads(EXAMPLE.read_text()), changes)


def rewritten(path: Path, **changes: Any) -> Path:
    path.write_text(tomli_w.dumps(example_with(**changes)))
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["check", "-c", str(path)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(EXAMPLE)]) == 0
    assert "config ok" in capsys.readouterr().out


def test_check_summarises_mqtt_discovery_and_metrics(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = rewritten(example, mqtt={"discovery": True, "prefix": "office/site"},
                     metrics={"enabled": True, "host": "127.0.0.1", "port": 9468})
    assert main(["check", "-c", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("mqtt ") and "under office/site/" in line for line in lines)
    assert "discovery     Home Assistant under homeassistant/" in lines
    assert "metrics       http://127.0.0.1:9468/metrics" in lines


def test_check_never_prints_the_router_password(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = (example.parent / "router.password").read_text().strip()
    assert main(["check", "-c", str(example)]) == 0
    out = capsys.readouterr()
    assert secret not in out.out + out.err


@pytest.mark.parametrize(("changes", "expected"), [
    ({"primary": {"quorum": 5}}, "primary: Value error, quorum 5 is more than"),
    ({"primary": {"interval": "fast"}}, "primary.interval: Input should be a valid number"),
    ({"router": {"primary": {"address": "203.0.113.300"}}}, "router.primary.address:"),
    ({"router": {"backup": {"gateway": "10.0.0.1"}}},
     "router.backup: Value error, gateway 10.0.0.1 is not on the subnet"),
    ({"router": {"driver": "cisco"}}, "router.driver:"),
    ({"failback": {"mode": "auto"}}, "failback: Value error, mode auto needs source"),
    ({"backup_mx": {"nexthop": "through the tunnel"}}, "backup_mx.nexthop:"),
    ({"site": "unix wiz"}, "site:"),
    ({"mqtt": {"hots": "x"}}, "mqtt.hots: unknown key"),
    ({"primary": {"targets": []}}, "primary.targets:"),
])
def test_broken_copies_exit_78_naming_the_field(
        example: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any],
        expected: str) -> None:
    code, _, err = check(rewritten(example, **changes), capsys)
    assert code == 78
    wanted = expected.replace("Value error, ", "")
    assert any(line.startswith(wanted) for line in err.splitlines()), err


def test_toml_syntax_error_gives_the_line(example: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # not TOML, so written as text: the example with a string left open
    text = example.read_text()
    assert 'site = "unixwiz"' in text
    example.write_text(text.replace('site = "unixwiz"', 'site = "unixwiz', 1))
    code, _, err = check(example, capsys)
    assert code == 78
    assert "(toml): syntax error" in err and "line" in err


def test_missing_secret_file_names_the_key(example: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (example.parent / "router.password").unlink()
    code, _, err = check(example, capsys)
    assert code == 78
    assert err.startswith("router.password_file: cannot read")


def test_unreadable_config_file_is_a_clear_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(tmp_path / "nope.toml", capsys)
    assert code == 78
    assert "(file): cannot read" in err


def test_every_problem_is_reported_at_once() -> None:
    text = tomli_w.dumps(example_with(primary={"quorum": 0}, mqtt={"port": 99999}))
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    fields = [p.split(":")[0] for p in exc.value.problems]
    assert fields == ["primary.quorum", "mqtt.port"]


def test_relative_secret_paths_are_beside_the_config(example: Path) -> None:
    cfg = load_config(example)
    assert cfg.router.password_file == example.parent / "router.password"
    secrets = load_secrets(cfg)
    assert secrets.router_password is not None
    assert "placeholder" not in repr(secrets)


def test_credentials_directory_wins(example: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "router.password").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    secrets = load_secrets(load_config(example))
    assert secrets.router_password is not None
    assert secrets.router_password.reveal() == "from-systemd"


def test_thresholds_that_contradict_are_refused() -> None:
    text = tomli_w.dumps(example_with(primary={"timeout": 2.5, "down_after": 2}))
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert exc.value.problems[0].startswith("primary: timeout 2.5s is not shorter")


# -- what used to fail only at run time (issue 11 item 6) ------------------------------

HOST_FIELDS = [("router", "host"), ("backup_mx", "host"), ("tunnel", "smtp_host"),
               ("metrics", "host"), ("mqtt", "host")]
PORT_FIELDS = [("router", "port"), ("backup_mx", "port"), ("tunnel", "smtp_port"),
               ("metrics", "port"), ("mqtt", "port")]


def refused(example: Path, capsys: pytest.CaptureFixture[str], field: str,
            **changes: Any) -> str:
    """`check` on the example with `changes`: exit 78 and a line for `field`; that line."""
    code, _, err = check(rewritten(example, **changes), capsys)
    assert code == 78, err
    lines = [line for line in err.splitlines() if line.startswith(f"{field}: ")]
    assert lines, err
    return lines[0]


@pytest.mark.parametrize(("section", "key"), HOST_FIELDS)
@pytest.mark.parametrize("value", ["999.1.2.3", "1.2.3", "1.2.3.4.5", "10.0.0.01"])
def test_digits_and_dots_that_are_no_ipv4_address_are_refused_for_every_host(
        example: Path, capsys: pytest.CaptureFixture[str], section: str, key: str,
        value: str) -> None:
    line = refused(example, capsys, f"{section}.{key}", **{section: {key: value}})
    assert "not an IPv4 address" in line and value in line


@pytest.mark.parametrize("value", ["mail server", "mx.example.com/25", "", "-lead.example",
                                   "fe80::1::2", "[::1]"])
def test_other_unusable_hosts_are_refused(example: Path, capsys: pytest.CaptureFixture[str],
                                          value: str) -> None:
    refused(example, capsys, "router.host", router={"host": value})


@pytest.mark.parametrize("value", ["mx.example.com", "mx.example.com.", "localhost",
                                   "broker_1", "::1", "fe80::1%eth0", "0.0.0.0", "10.0.0.1"])
def test_host_names_and_addresses_are_accepted(value: str) -> None:
    cfg = parse_config(tomli_w.dumps(example_with(mqtt={"host": value},
                                                  metrics={"host": value})))
    assert cfg.mqtt.host == cfg.metrics.host == value


@pytest.mark.parametrize(("section", "key"), PORT_FIELDS)
@pytest.mark.parametrize("value", [0, 65536])
def test_ports_out_of_range_are_refused(example: Path, capsys: pytest.CaptureFixture[str],
                                        section: str, key: str, value: int) -> None:
    refused(example, capsys, f"{section}.{key}", **{section: {key: value}})


@pytest.mark.parametrize(("nexthop", "why"), [
    ("smtp:[999.1.2.3]:25", "not an IPv4 address"),
    ("smtp:[10.0.0.1]:99999", "not a number from 1 to 65535"),
    ("foo:[10.0.0.1]", "names no host and port"),
])
def test_a_nexthop_the_mail_path_probe_cannot_connect_to_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], nexthop: str, why: str) -> None:
    assert why in refused(example, capsys, "backup_mx.nexthop",
                          backup_mx={"nexthop": nexthop})


@pytest.mark.parametrize("value", ["two words", "x.example\r\nRSET", "[999.1.2.3]"])
def test_an_ehlo_name_smtp_would_choke_on_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    refused(example, capsys, "tunnel.ehlo_name", tunnel={"ehlo_name": value})


@pytest.mark.parametrize("key", ["prefix", "discovery_prefix"])
@pytest.mark.parametrize("value", ["a/+/b", "site/#", "/"])
def test_an_mqtt_prefix_with_wildcards_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], key: str, value: str) -> None:
    assert "not a usable topic prefix" in refused(example, capsys, f"mqtt.{key}",
                                                  mqtt={key: value})


def test_an_apply_that_cannot_outlast_the_router_restart_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(example, capsys, "router.action_timeout",
                   router={"restart_timeout": 90, "action_timeout": 60})
    assert "60s is not longer than restart_timeout 90s" in line


@pytest.mark.parametrize(("driver", "no_restart"), [
    ("netopia-menu", {"restart": {"model": "none"}}),
    ("netopia-cli", {"commands": {"restart": ""}}),
    ("dry-run", None),
])
def test_a_console_that_applies_at_once_needs_no_apply_longer_than_a_restart(
        example: Path, capsys: pytest.CaptureFixture[str], driver: str,
        no_restart: dict[str, Any] | None) -> None:
    router = {"driver": driver, "restart_timeout": 90, "action_timeout": 60,
              "dialogue": no_restart}
    code, _, err = check(rewritten(example, router=router), capsys)
    assert code == 0, err


def test_a_control_socket_path_too_long_to_bind_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(example, capsys, "control.socket",
                   control={"socket": "/run/" + "x" * 100 + "/control.sock"})
    assert "at most 107" in line


@pytest.mark.parametrize(("field", "changes"), [
    ("state_dir", {"state_dir": "{tmp}/missing/state"}),
    ("control.socket", {"control": {"socket": "{tmp}/missing/run/control.sock"}}),
    ("primary.record", {"primary": {"record": "{tmp}/missing/log/rounds.jsonl"}}),
])
def test_a_path_whose_directory_above_does_not_exist_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], field: str,
        changes: dict[str, Any]) -> None:
    tmp = str(example.parent)
    filled = tomllib.loads(tomli_w.dumps(changes).replace("{tmp}", tmp))
    line = refused(example, capsys, field, **filled)
    assert f"{tmp}/missing" in line and "exists" in line


@pytest.mark.parametrize(("field", "changes"), [
    ("state_dir", {"state_dir": "{tmp}/router.password"}),
    ("control.socket", {"control": {"socket": "{tmp}/router.password"}}),
    ("control.socket", {"control": {"socket": "{tmp}/router.password/control.sock"}}),
    ("primary.record", {"primary": {"record": "{tmp}"}}),
])
def test_a_path_taken_by_something_else_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], field: str,
        changes: dict[str, Any]) -> None:
    filled = tomllib.loads(tomli_w.dumps(changes).replace("{tmp}", str(example.parent)))
    refused(example, capsys, field, **filled)


def test_paths_the_daemon_creates_one_level_deep_are_accepted(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = example.parent
    rewritten(example, state_dir=str(tmp / "state"),
              control={"socket": str(tmp / "run" / "control.sock")},
              primary={"record": str(tmp / "state" / "rounds.jsonl")})
    code, out, err = check(example, capsys)
    assert code == 0, err
    assert "config ok" in out


def test_a_control_group_that_does_not_exist_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(example, capsys, "control.group",
                   control={"group": "no-such-group-dslf"})
    assert "no such group 'no-such-group-dslf'" in line


@pytest.mark.parametrize(("field", "changes"), [
    ("primary.source", {"primary": {"source": "192.0.2.77"}}),
    ("failback.source", {"failback": {"mode": "auto", "source": "192.0.2.77"}}),
    ("metrics.host", {"metrics": {"enabled": True, "host": "192.0.2.77"}}),
])
def test_a_local_address_this_host_does_not_have_is_refused(
        example: Path, capsys: pytest.CaptureFixture[str], field: str,
        changes: dict[str, Any]) -> None:
    # only bound to see whether it exists here (TEST-NET-1): nothing is sent
    assert "is not an address of this host" in refused(example, capsys, field, **changes)


def test_local_addresses_of_this_host_are_accepted(
        example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rewritten(example, primary={"source": "127.0.0.1"},
              metrics={"enabled": True, "host": "127.0.0.1"})
    code, _, err = check(example, capsys)
    assert code == 0, err
