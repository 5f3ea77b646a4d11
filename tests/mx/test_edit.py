"""The repair edit on recorded files: only the domain's entry changes, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


_OTHER = st.sampled_from(["example.org smtp:[10.1.2.3]", "# unixwiz.net old", "",
                          "zzz.example\tsmtp:[10.9.9.9]:2525", "   # indented note",
                          ".unixwiz.net smtp:[10.0.0.7]", "UNIXWIZ.NET.example relay:[x]"])
_OURS = st.sampled_from(["unixwiz.net smtp:[192.168.7.9]", "UnixWiz.Net\tsmtp:1.2.3.4:25",
                         "unixwiz.net smtp:[192.168.7.254]:25"])


@given(lines=st.lists(st.one_of(_OTHER, _OURS), max_size=12),
       newline=st.sampled_from(["\n", "\r\n"]), final_newline=st.booleans())
def test_repair_edit_keeps_every_line_that_is_not_the_domain_entry(
        lines: list[str], newline: str, final_newline: bool) -> None:
    text = newline.join(lines) + (newline if final_newline and lines else "")
    src = parse_map(text, "t")
    new_text = set_entry(src, "unixwiz.net", NEXTHOP)
    new = parse_map(new_text, "t")
    # exactly one entry for the domain, with our nexthop
    assert [e.value for e in new.find("unixwiz.net")] == [NEXTHOP]

    # every other physical line is there, in order, byte for byte
    def others(m: str) -> list[str]:
        src_m = parse_map(m, "t")
        ours = {n for e in src_m.find("unixwiz.net")
                for n in range(e.first_line, e.last_line + 1)}
        return [line.rstrip("\r\n") for n, line in enumerate(src_m.lines, start=1)
                if n not in ours]
    assert others(new_text) == others(text)
    # and every line ending that was there is still there
    assert new_text.count("\r\n") >= text.count("\r\n") - len(src.find("unixwiz.net"))
