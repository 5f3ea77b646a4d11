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
