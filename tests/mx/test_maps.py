"""The map-source parser and the source checks, on recorded files (tests/fixtures/postfix).

Each case folder holds a `transport` source and `expected.json` with what postmap 3.7
answered for the domain when the case was recorded, and the verdict we expect.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from postfix_sync import MxMapError
from postfix_sync.checks import SourceRead, relay_source, transport_source
from postfix_sync.maps import MapRef, decode_source, parse_map, parse_relay_domains

FIXTURES = Path(__file__).parent.parent / "fixtures" / "postfix"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def _case(name: str) -> tuple[str, dict[str, object]]:
    folder = FIXTURES / name
    text = decode_source((folder / "transport").read_bytes(), "transport")
    return text, json.loads((folder / "expected.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_first_entry_is_what_postmap_recorded(case: str) -> None:
    text, expected = _case(case)
    entries = parse_map(text, "transport").find("unixwiz.net")
    got = entries[0].value if entries else None
    assert got == expected["postmap_q"]


@pytest.mark.parametrize("case", CASES)
def test_transport_source_verdict(case: str) -> None:
    text, expected = _case(case)
    src = parse_map(text, "transport")
    check = transport_source("unixwiz.net", str(expected["nexthop"]),
                             [SourceRead(MapRef("hash", "/x/transport"), src)])
    want = expected["transport_source"]
    assert isinstance(want, dict)
    assert check.name == "transport_source"
    assert check.ok is want["ok"], check.detail
    assert want["detail_contains"] in check.detail


@pytest.mark.skipif(shutil.which("postmap") is None, reason="needs Postfix's postmap")
@pytest.mark.parametrize("case", CASES)
def test_parser_agrees_with_the_installed_postmap(case: str, tmp_path: Path) -> None:
    # the recorded answers must still be what the real postmap says
    (tmp_path / "main.cf").write_text(f"queue_directory = {tmp_path}\n"
                                      "myhostname = postmap.test\n")
    shutil.copy(FIXTURES / case / "transport", tmp_path / "transport")
    # postmap waits until a just-written main.cf or source is a second old: age them
    old = time.time() - 10
    for name in ("main.cf", "transport"):
        os.utime(tmp_path / name, (old, old))
    subprocess.run(["postmap", "-c", str(tmp_path), f"hash:{tmp_path}/transport"],
                   check=True, capture_output=True)
    res = subprocess.run(["postmap", "-c", str(tmp_path), "-q", "unixwiz.net",
                          f"hash:{tmp_path}/transport"], capture_output=True, text=True)
    answer = res.stdout.strip() if res.returncode == 0 else None
    entries = parse_map((tmp_path / "transport").read_text(), "transport").find("unixwiz.net")
    assert answer == (entries[0].value if entries else None)


def test_duplicate_key_is_reported_as_a_warning_naming_the_line() -> None:
    src = parse_map("a x\nb y\nA z\n", "/etc/postfix/transport")
    assert src.warnings == ("/etc/postfix/transport line 3: duplicate entry 'a', "
                            "postmap keeps the first",)


@pytest.mark.parametrize(("text", "keys", "warning"), [
    ("lonely\nb y\n", ["b"], "line 1: expected format: key whitespace value"),
    ("  stray\nk v\n", ["k"], "line 1: continuation line"),
], ids=["key without value", "continuation before any entry"])
def test_a_line_postmap_skips_is_skipped_with_a_warning(text: str, keys: list[str],
                                                        warning: str) -> None:
    src = parse_map(text, "t")
    assert [e.key for e in src.entries] == keys
    assert warning in src.warnings[0]


def test_indented_comment_does_not_break_a_continuation() -> None:
    src = parse_map("k a\n  # note\n  b\n", "t")
    assert src.find("k")[0].value == "a  b"
    assert (src.find("k")[0].first_line, src.find("k")[0].last_line) == (1, 3)


def test_crlf_file_keeps_its_line_endings_and_strips_them_from_values() -> None:
    src = parse_map("a x\r\nb y\r\n", "t")
    assert src.find("b")[0].value == "y"
    assert src.newline == "\r\n"
    assert "".join(src.lines) == "a x\r\nb y\r\n"


def test_non_utf8_source_is_an_error_naming_file_and_line() -> None:
    with pytest.raises(MxMapError, match=r"/etc/postfix/transport line 2: not UTF-8"):
        decode_source(b"a x\nb \xff\n", "/etc/postfix/transport")


def test_binary_file_is_an_error_naming_file_and_line() -> None:
    with pytest.raises(MxMapError, match=r"transport.db line 1: NUL byte"):
        decode_source(b"\x00\x00\x06\x15", "transport.db")


@pytest.mark.parametrize(("case", "ok", "detail"), [
    ("relays_ok", True, "line 3: unixwiz.net OK"),
    ("relays_missing", False, "line 3 mentions it in a comment"),
])
def test_relay_map_relays_the_domain_only_with_an_ok_entry(case: str, ok: bool,
                                                           detail: str) -> None:
    text = (FIXTURES / case / "relays").read_text()
    relay = parse_relay_domains("hash:/etc/postfix/relays")
    check = relay_source("unixwiz.net", relay,
                         [SourceRead(relay.tables[0], parse_map(text, "/etc/postfix/relays"))])
    assert check.ok is ok
    assert detail in check.detail


def test_domain_listed_in_relay_domains_itself_is_relayed() -> None:
    relay = parse_relay_domains("example.org, UnixWiz.net hash:/etc/postfix/relays")
    assert relay_source("unixwiz.net", relay, []).ok


def test_only_a_dot_domain_in_relay_domains_does_not_relay_the_domain() -> None:
    relay = parse_relay_domains(".unixwiz.net")
    assert not relay_source("unixwiz.net", relay, []).ok


def test_example_transport_and_relays_pass_the_source_checks() -> None:
    examples = Path(__file__).parent.parent.parent / "examples" / "postfix"
    transport = parse_map((examples / "transport").read_text(), "transport")
    relays = parse_map((examples / "relays").read_text(), "relays")
    assert transport.warnings == () and relays.warnings == ()
    assert transport_source("unixwiz.net", "smtp:[192.168.7.254]:25",
                            [SourceRead(MapRef("hash", "/etc/postfix/transport"), transport)]).ok
    relay = parse_relay_domains("hash:/etc/postfix/relays")
    assert relay_source("unixwiz.net", relay, [SourceRead(relay.tables[0], relays)]).ok
