"""`dslfailover mx` with unusable config: exit 78 naming the problem (no peers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main as cli_main
from tests.harness import daemon_config


def test_config_without_backup_mx_exits_78(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = daemon_config(tmp_path, "c.toml")
    with pytest.raises(SystemExit) as exc:
        cli_main(["mx", "verify", "--json", "-c", str(cfg)])
    assert exc.value.code == 78
    assert "backup_mx: required" in capsys.readouterr().err


def test_bad_backup_mx_config_exits_78_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = daemon_config(tmp_path, "c.toml", backup_mx={
        "host": "h", "key_file": "/k", "known_hosts": "/kh", "domain": "unixwiz.net",
        "nexthop": "smtp [x]"})
    with pytest.raises(SystemExit) as exc:
        cli_main(["mx", "verify", "-c", str(cfg)])
    assert exc.value.code == 78
    assert "backup_mx.nexthop:" in capsys.readouterr().err
