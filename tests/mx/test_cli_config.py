"""`dslfailover mx` with unusable config: exit 78 naming the problem (no peers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main as cli_main

BASE = ('site = "t"\n[primary]\ntargets = ["203.0.113.1"]\n[router]\n'
        'driver = "dry-run"\n[router.primary]\naddress = "203.0.113.2"\n'
        'netmask = "255.255.255.0"\ngateway = "203.0.113.1"\n[router.backup]\n'
        'address = "198.51.100.10"\nnetmask = "255.255.255.0"\n'
        'gateway = "198.51.100.9"\n')


def test_config_without_backup_mx_exits_78(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE)
    with pytest.raises(SystemExit) as exc:
        cli_main(["mx", "verify", "--json", "-c", str(cfg)])
    assert exc.value.code == 78
    assert "backup_mx: required" in capsys.readouterr().err


def test_bad_backup_mx_config_exits_78_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE + '[backup_mx]\nhost = "h"\nkey_file = "/k"\n'
                   'known_hosts = "/kh"\ndomain = "unixwiz.net"\nnexthop = "smtp [x]"\n')
    with pytest.raises(SystemExit) as exc:
        cli_main(["mx", "verify", "-c", str(cfg)])
    assert exc.value.code == 78
    assert "backup_mx.nexthop:" in capsys.readouterr().err
