"""Nexthops compared by meaning, as Postfix's smtp(8) would route them."""

from __future__ import annotations

import pytest

from postfix_sync.nexthop import NexthopError, compare_nexthops, parse_nexthop, probe_target

WANT = "smtp:[192.168.7.254]:25"


def test_bracketed_ip_without_port_equals_the_same_with_port_25() -> None:
    assert compare_nexthops(WANT, "smtp:[192.168.7.254]")[0]


def test_missing_brackets_differ_and_the_reason_is_the_mx_lookup() -> None:
    same, why = compare_nexthops(WANT, "smtp:192.168.7.254:25")
    assert not same
    assert "no [brackets]: Postfix would look up MX records for 192.168.7.254" in why


def test_other_port_differs() -> None:
    same, why = compare_nexthops(WANT, "smtp:[192.168.7.254]:587")
    assert not same
    assert "port 587, expected 25" in why


def test_other_transport_differs() -> None:
    same, why = compare_nexthops(WANT, "relay:[192.168.7.254]:25")
    assert not same
    assert "transport 'relay'" in why


def test_lmtp_default_port_is_24_not_25() -> None:
    assert parse_nexthop("lmtp:[10.0.0.1]").effective_port == 24


def test_host_names_compare_case_insensitively() -> None:
    assert compare_nexthops("smtp:[Mail.Example]", "smtp:[mail.example]:25")[0]


def test_garbage_actual_is_a_mismatch_with_the_reason() -> None:
    same, why = compare_nexthops(WANT, "smtp:[192.168.7.254:25")
    assert not same
    assert "unbalanced [brackets]" in why


@pytest.mark.parametrize("bad", ["", "smtp", "smtp:[1.2.3.4]:0", "smtp:[1.2.3.4]:x",
                                 "smtp:[1.2.3.4]:99999"])
def test_bad_nexthops_are_rejected_with_the_text_in_the_message(bad: str) -> None:
    with pytest.raises(NexthopError):
        parse_nexthop(bad)


def test_probe_target_is_host_and_effective_port() -> None:
    assert probe_target("smtp:[127.0.0.1]") == ("127.0.0.1", 25)
    assert probe_target("smtp:[127.0.0.1]:2525") == ("127.0.0.1", 2525)
