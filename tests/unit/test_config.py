"""Config validation and `dslfailover check`: every bad file names the field and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import ConfigError, load_config, load_secrets, parse_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "dslfailover.toml"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example with its placeholder secret files beside it."""
    for name in ("dslfailover.toml", "router.password", "id_ed25519", "known_hosts"):
        shutil.copy(EXAMPLE.parent / name, tmp_path / name)
    return tmp_path / "dslfailover.toml"


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
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


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('quorum = 1 ', 'quorum = 5 ', "primary: Value error, quorum 5 is more than"),
    ('interval = 0.5 ', 'interval = "fast" ', "primary.interval: Input should be a valid number"),
    ('address = "203.0.113.2"', 'address = "203.0.113.300"', "router.primary.address:"),
    ('gateway = "198.51.100.9"', 'gateway = "10.0.0.1"',
     "router.backup: Value error, gateway 10.0.0.1 is not on the subnet"),
    ('driver = "netopia-menu"', 'driver = "cisco"', "router.driver:"),
    ('mode = "manual"', 'mode = "auto"', "failback: Value error, mode auto needs source"),
    ('nexthop = "smtp:[192.168.7.254]:25"', 'nexthop = "through the tunnel"',
     "backup_mx.nexthop:"),
    ('site = "unixwiz"', 'site = "unix wiz"', "site:"),
    ('[mqtt]\n', '[mqtt]\nhots = "x"\n', "mqtt.hots: unknown key"),
    ('targets = ["203.0.113.1", "1.1.1.1", "9.9.9.9"]', 'targets = []', "primary.targets:"),
])
def test_broken_copies_exit_78_naming_the_field(
        example: Path, capsys: pytest.CaptureFixture[str], old: str, new: str,
        expected: str) -> None:
    code, _, err = check(edit(example, old, new), capsys)
    assert code == 78
    wanted = expected.replace("Value error, ", "")
    assert any(line.startswith(wanted) for line in err.splitlines()), err


def test_toml_syntax_error_gives_the_line(example: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(edit(example, 'site = "unixwiz"', 'site = "unixwiz'), capsys)
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
    text = EXAMPLE.read_text().replace("quorum = 1 ", "quorum = 0 ").replace(
        'port = 1883', 'port = 99999')
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
    text = EXAMPLE.read_text().replace("timeout = 0.8 ", "timeout = 2.5 ").replace(
        "down_after = 4 ", "down_after = 2 ")
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    assert exc.value.problems[0].startswith("primary: timeout 2.5s is not shorter")
