"""`repair` against the real private Postfix: byte-exact edits, backups, restore on failure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.lab.postfix import POSTMAP
from postfix_sync import BackupMx, MxRepairError

from .conftest import DOMAIN, MxWorld

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.root]


def _wrong(w: MxWorld, newline: str) -> bytes:
    lines = ["# backup MX transport, keep sorted", "example.org\tsmtp:[127.0.0.2]",
             "#unixwiz.net smtp:[10.0.0.1]  (old)", f"UnixWiz.net  smtp:127.0.0.1:{w.sink.port}",
             "zzz.example  smtp:[127.0.0.3]:2525", "# end"]
    return newline.join(lines).encode() + newline.encode()


async def _query(w: MxWorld) -> str:
    return (await w.postfix.run(POSTMAP, "-q", DOMAIN, f"hash:{w.postfix.transport}")).strip()


def _backups(w: MxWorld) -> list[Path]:
    return sorted(w.postfix.transport.parent.glob("transport.*.bak"))


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_repair_changes_only_the_domain_entry_and_keeps_every_other_byte(
        mx: MxWorld, newline: str) -> None:
    original = _wrong(mx, newline)
    await mx.transport(original)
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair()
    after = mx.postfix.transport.read_bytes()
    expected = original.replace(f"UnixWiz.net  smtp:127.0.0.1:{mx.sink.port}".encode(),
                                f"UnixWiz.net  {mx.nexthop}".encode())
    assert after == expected
    assert report.changed
    assert report.verify is not None and report.verify.ok
    assert await _query(mx) == mx.nexthop


async def _wrong_map_without_backups(mx: MxWorld) -> bytes:
    """A wrong entry in the transport source, and no backups of it beside it yet."""
    for old in _backups(mx):
        old.unlink()
    original = _wrong(mx, "\n")
    await mx.transport(original)
    return original


async def test_repair_keeps_a_timestamped_backup_of_the_original(mx: MxWorld) -> None:
    original = await _wrong_map_without_backups(mx)
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair()
    [backup] = _backups(mx)
    assert re.fullmatch(r"transport\.\d{8}T\d{6}Z\.bak", backup.name)
    assert backup.read_bytes() == original
    assert report.backups == (str(backup),)


async def test_dry_run_returns_the_diff_and_writes_nothing(mx: MxWorld) -> None:
    original = await _wrong_map_without_backups(mx)
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair(dry_run=True)
    assert not report.changed
    assert f"-UnixWiz.net  smtp:127.0.0.1:{mx.sink.port}\n" in report.diff
    assert f"+UnixWiz.net  {mx.nexthop}\n" in report.diff
    assert "would run: postmap hash:" in report.detail
    assert mx.postfix.transport.read_bytes() == original
    assert _backups(mx) == []


async def test_repair_adds_a_missing_relay_entry(mx: MxWorld) -> None:
    await mx.relays("# relays\nexample.org OK\n")
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair()
    assert mx.postfix.relays.read_text() == f"# relays\nexample.org OK\n{DOMAIN} OK\n"
    assert report.verify is not None and report.verify.ok


async def test_repair_of_a_stale_compiled_map_rebuilds_without_editing(mx: MxWorld) -> None:
    await mx.transport(mx.entry("smtp:[127.0.0.9]:25"))
    source = mx.entry().encode()
    await mx.transport(source, build=False)
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair()
    assert report.diff == ""
    assert mx.postfix.transport.read_bytes() == source
    assert report.verify is not None and report.verify.ok


async def test_repair_on_correct_maps_changes_nothing(mx: MxWorld) -> None:
    before = mx.postfix.transport.read_bytes()
    async with BackupMx(mx.settings()) as bmx:
        report = await bmx.repair()
    assert not report.changed
    assert mx.postfix.transport.read_bytes() == before


async def test_failed_reload_restores_the_backup_and_says_so(mx: MxWorld) -> None:
    original = _wrong(mx, "\n")
    await mx.transport(original)
    # every `postfix reload` fails on this MX: the repair must be undone
    async with BackupMx(mx.settings(postfix="/bin/false")) as bmx:
        with pytest.raises(MxRepairError, match=r"postfix reload.*restored the backups"):
            await bmx.repair()
    assert mx.postfix.transport.read_bytes() == original
    assert await _query(mx) == f"smtp:127.0.0.1:{mx.sink.port}"


async def test_repair_refuses_when_relay_domains_has_no_table_to_edit(mx: MxWorld) -> None:
    # relaying is configured in main.cf only, without us: repair never edits main.cf
    await mx.postfix.set_main({"relay_domains": "example.org"})
    before = mx.postfix.transport.read_bytes()
    async with BackupMx(mx.settings()) as bmx:
        with pytest.raises(MxRepairError, match="relay_domains has no hash/lmdb/cdb text "
                                                "table to edit"):
            await bmx.repair()
    assert mx.postfix.transport.read_bytes() == before
