"""The `[dns]` judges on plain lookup outcomes (no DNS): names compared without case or
trailing dot, the cases a real server is awkward to make, and the report's verdict."""

from __future__ import annotations

from daemon.dns_checks import (
    DnsCheck,
    DnsReport,
    Lookup,
    MxRecord,
    Outcome,
    judge_mx,
    judge_primary,
)
from daemon.model import DnsHealth

OURS, BACKUP = "mail.example.net", "mx1.example.org"
PUBLIC = ("192.0.2.10", "2001:db8::10")
TIMEOUT = "no answer from 127.0.0.1:53 within 2s"


def mx_answer(*records: tuple[int, str]) -> Lookup[MxRecord]:
    return Lookup("example.net", "MX", Outcome.ANSWER,
                  tuple(MxRecord(p, e) for p, e in records))


def not_cname(name: str) -> Lookup[str]:
    return Lookup(name, "CNAME", Outcome.NO_ANSWER)


def judged(mx: Lookup[MxRecord], **cnames: Lookup[str]) -> DnsCheck:
    return judge_mx("example.net", OURS, BACKUP, mx, cnames)


def addresses(rdtype: str, *found: str) -> Lookup[str]:
    return Lookup(OURS, rdtype, Outcome.ANSWER if found else Outcome.NO_ANSWER, found)


def timed_out(rdtype: str) -> Lookup[str]:
    return Lookup(OURS, rdtype, Outcome.TIMEOUT, detail=TIMEOUT)


def test_names_compare_without_case_or_trailing_dot() -> None:
    mx = mx_answer((10, "Mail.Example.NET."), (20, "MX1.example.org"))
    check = judge_mx("Example.Net.", "MAIL.example.net.", BACKUP + ".", mx, {})
    assert check.ok
    assert check.records == ("10 mail.example.net.", "20 mx1.example.org.")


def test_records_are_listed_by_preference() -> None:
    check = judged(mx_answer((20, BACKUP), (10, OURS)))
    assert check.records == ("10 mail.example.net.", "20 mx1.example.org.")


def test_our_mx_missing_is_named() -> None:
    check = judged(mx_answer((20, BACKUP)))
    assert check.health is DnsHealth.FAILING
    assert check.detail.startswith(f"our MX {OURS} is not listed (expected MX {OURS} and")


def test_a_third_host_preferred_over_ours_fails() -> None:
    check = judged(mx_answer((10, OURS), (20, BACKUP), (5, "spam.example.com")))
    assert check.health is DnsHealth.FAILING
    assert "preferred over or equal to ours (10): spam.example.com (5)" in check.detail


def test_our_best_preference_counts() -> None:
    assert judged(mx_answer((30, OURS), (10, OURS), (20, BACKUP))).ok


def test_a_null_mx_fails_without_a_cname_lookup() -> None:
    check = judged(mx_answer((0, ".")))
    assert check.health is DnsHealth.FAILING
    assert check.records == ("0 .",)


def test_an_unanswered_cname_lookup_is_unknown() -> None:
    check = judged(mx_answer((10, OURS), (20, BACKUP)),
                   **{OURS: not_cname(OURS),
                      BACKUP: Lookup(BACKUP, "CNAME", Outcome.TIMEOUT, detail=TIMEOUT)})
    assert check.health is DnsHealth.UNKNOWN
    assert check.detail == f"cannot tell: CNAME {BACKUP}: {TIMEOUT}"


def test_a_wrong_mx_set_fails_even_when_a_cname_lookup_timed_out() -> None:
    check = judged(mx_answer((10, OURS)),
                   **{OURS: Lookup(OURS, "CNAME", Outcome.TIMEOUT, detail=TIMEOUT)})
    assert check.health is DnsHealth.FAILING


def test_an_unanswered_mx_lookup_is_unknown_never_ok() -> None:
    check = judged(Lookup("example.net", "MX", Outcome.TIMEOUT, detail=TIMEOUT))
    assert check.health is DnsHealth.UNKNOWN and not check.ok
    assert check.detail == f"cannot tell: MX example.net: {TIMEOUT}"


def test_no_mx_records_fails() -> None:
    check = judged(Lookup("example.net", "MX", Outcome.NO_ANSWER))
    assert check.detail.startswith("example.net has no MX records")


def test_addresses_compare_as_addresses() -> None:
    check = judge_primary(OURS, PUBLIC, addresses("A", "192.0.2.10"),
                          addresses("AAAA", "2001:0db8:0:0::10"))
    assert check.ok
    assert check.records == ("192.0.2.10", "2001:db8::10")


def test_one_public_address_of_two_is_enough() -> None:
    assert judge_primary(OURS, PUBLIC, addresses("A", "192.0.2.10"), addresses("AAAA")).ok


def test_a_foreign_address_fails_even_when_the_other_lookup_timed_out() -> None:
    check = judge_primary(OURS, PUBLIC, timed_out("A"), addresses("AAAA", "2001:db8::99"))
    assert check.health is DnsHealth.FAILING
    assert check.detail.startswith(f"{OURS} points elsewhere: 2001:db8::99 (")


def test_our_address_with_the_other_lookup_timed_out_is_unknown() -> None:
    check = judge_primary(OURS, PUBLIC, addresses("A", "192.0.2.10"), timed_out("AAAA"))
    assert check.health is DnsHealth.UNKNOWN
    assert check.detail == f"cannot tell: AAAA {OURS}: {TIMEOUT}"


def test_nxdomain_of_our_mx_fails() -> None:
    a: Lookup[str] = Lookup(OURS, "A", Outcome.NXDOMAIN)
    aaaa: Lookup[str] = Lookup(OURS, "AAAA", Outcome.NXDOMAIN)
    check = judge_primary(OURS, PUBLIC, a, aaaa)
    assert check.detail.startswith(f"{OURS} does not exist (NXDOMAIN)")


def test_the_report_is_failing_before_unknown_before_ok() -> None:
    ok = DnsCheck("dns_mx", DnsHealth.OK, "fine")
    unknown = DnsCheck("dns_primary", DnsHealth.UNKNOWN, "cannot tell: x")
    failing = DnsCheck("dns_mx", DnsHealth.FAILING, "missing")
    assert DnsReport((ok, ok)).health is DnsHealth.OK
    assert DnsReport((ok, unknown)).health is DnsHealth.UNKNOWN
    assert DnsReport((unknown, failing)).health is DnsHealth.FAILING
    report = DnsReport((failing, unknown))
    assert report.failed() == (failing, unknown)
    assert report.summary() == "dns_mx failing: missing; dns_primary unknown: cannot tell: x"
    assert report.as_dict() == {
        "ok": False, "health": "failing",
        "checks": [{"name": "dns_mx", "ok": False, "detail": "missing",
                    "health": "failing", "records": []},
                   {"name": "dns_primary", "ok": False, "detail": "cannot tell: x",
                    "health": "unknown", "records": []}]}
