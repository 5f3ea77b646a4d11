"""The repair edit on recorded files: only the domain's entry changes, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from postfix_sync.edit import set_entry, unified_diff
from postfix_sync.maps import parse_map

FIXTURES = Path(__file__).parent.parent / "fixtures" / "postfix"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "repaired").is_file())
NEXTHOP = "smtp:[192.168.7.254]:25"


def _read(path: Path) -> str:
    # newline="" keeps CRLF as it is on disk
    with path.open(encoding="utf-8", newline="") as f:
        return f.read()


@pytest.mark.parametrize("case", CASES)
def test_repair_edit_matches_the_recorded_result(case: str) -> None:
    src = parse_map(_read(FIXTURES / case / "transport"), "transport")
    first = src.find("unixwiz.net")
    keep = first[0].value if first and first[0].value == "smtp:[192.168.7.254]" else None
    assert set_entry(src, "unixwiz.net", NEXTHOP, keep_if=keep) == \
        _read(FIXTURES / case / "repaired")


def test_repaired_file_has_exactly_one_active_entry_with_our_nexthop() -> None:
    src = parse_map(_read(FIXTURES / "repair_duplicate" / "transport"), "t")
    new = parse_map(set_entry(src, "unixwiz.net", NEXTHOP), "t").find("unixwiz.net")
    assert [e.value for e in new] == [NEXTHOP]


def test_correct_file_is_left_identical() -> None:
    text = "# c\nunixwiz.net  smtp:[192.168.7.254]:25\n"
    src = parse_map(text, "t")
    assert set_entry(src, "unixwiz.net", NEXTHOP, keep_if=NEXTHOP) == text


def test_diff_names_the_file_and_shows_the_change() -> None:
    diff = unified_diff("/etc/postfix/transport", "a x\nu old\n", "a x\nu new\n")
    assert "--- /etc/postfix/transport (now)" in diff
    assert "-u old\n+u new\n" in diff
