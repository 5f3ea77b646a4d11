"""`check_dns` against a real NSD on loopback, one zone mistake per test; and a
nameserver that never answers, which is `unknown`, never `ok`."""

from __future__ import annotations

import time

import pytest

from daemon.dns_checks import DNS_CHECK_NAMES, DnsCheck, DnsReport
from daemon.lab.nsd import StartNsd
from daemon.model import DnsHealth
from daemon.probes.dns import LOOKUP_SLACK, check_dns

from .conftest import (
    BACKUP_MX,
    DOMAIN,
    backup_zone,
    our_zone,
    settings_for,
    zones,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def by_name(report: DnsReport) -> dict[str, DnsCheck]:
    assert tuple(c.name for c in report.checks) == DNS_CHECK_NAMES
    return {c.name: c for c in report.checks}


async def checked(start_nsd: StartNsd, served: dict[str, str], **changes: object
                  ) -> dict[str, DnsCheck]:
    nsd = await start_nsd(served)
    return by_name(await check_dns(settings_for(nsd.port, **changes)))


async def test_the_correct_zone_passes_and_shows_the_records(start_nsd: StartNsd) -> None:
    nsd = await start_nsd(zones())
    report = await check_dns(settings_for(nsd.port))
    checks = by_name(report)
    assert report.health is DnsHealth.OK and report.summary() == "dns ok"
    assert checks["dns_mx"].records == ("10 mail.unixwiz.net.", f"20 {BACKUP_MX}.")
    assert checks["dns_primary"].records == ("192.0.2.10", "2001:db8::10")
    assert checks["dns_mx"].detail == (
        f"mail.unixwiz.net (ours) preferred over {BACKUP_MX} (backup): "
        f"10 mail.unixwiz.net., 20 {BACKUP_MX}.")


async def test_a_missing_backup_mx_fails(start_nsd: StartNsd) -> None:
    mx = (await checked(start_nsd, zones(our_zone(mx=("10 mail",)))))["dns_mx"]
    assert mx.health is DnsHealth.FAILING
    assert f"the backup MX {BACKUP_MX} is missing" in mx.detail
    assert mx.records == ("10 mail.unixwiz.net.",)


async def test_a_backup_mx_preferred_over_ours_fails(start_nsd: StartNsd) -> None:
    served = zones(our_zone(mx=("20 mail", f"5 {BACKUP_MX}.")))
    mx = (await checked(start_nsd, served))["dns_mx"]
    assert mx.health is DnsHealth.FAILING
    assert f"the backup MX {BACKUP_MX} (5) is preferred over ours (20)" in mx.detail


async def test_equal_preferences_fail(start_nsd: StartNsd) -> None:
    served = zones(our_zone(mx=("10 mail", f"10 {BACKUP_MX}.")))
    mx = (await checked(start_nsd, served))["dns_mx"]
    assert mx.health is DnsHealth.FAILING
    assert "has the same preference as ours (10)" in mx.detail


async def test_a_cname_as_mx_target_fails_and_names_it(start_nsd: StartNsd) -> None:
    served = zones(our_zone(mx=("10 mail", "20 smtp.example.org.")),
                   backup_zone("smtp IN CNAME mx1"))
    mx = (await checked(start_nsd, served, backup_mx="smtp.example.org"))["dns_mx"]
    assert mx.health is DnsHealth.FAILING
    assert "MX target smtp.example.org is a CNAME (to mx1.example.org.; RFC 2181" in mx.detail


async def test_our_mx_as_a_cname_fails_too(start_nsd: StartNsd) -> None:
    ours = our_zone(mail=(), extra=("mail IN CNAME host", "host IN A 192.0.2.10"))
    checks = await checked(start_nsd, zones(ours))
    assert checks["dns_mx"].health is DnsHealth.FAILING
    assert "MX target mail.unixwiz.net is a CNAME (to host.unixwiz.net." \
        in checks["dns_mx"].detail
    assert checks["dns_primary"].ok   # the address behind the alias is still ours


async def test_our_mx_pointing_elsewhere_fails_with_the_addresses(
        start_nsd: StartNsd) -> None:
    ours = our_zone(mail=("A 203.0.113.7", "AAAA 2001:db8::10"))
    checks = await checked(start_nsd, zones(ours))
    primary = checks["dns_primary"]
    assert primary.health is DnsHealth.FAILING
    assert primary.detail.startswith("mail.unixwiz.net points elsewhere: 203.0.113.7 (")
    assert primary.records == ("203.0.113.7", "2001:db8::10")
    assert checks["dns_mx"].ok


async def test_our_mx_without_an_address_fails(start_nsd: StartNsd) -> None:
    ours = our_zone(mail=("TXT \"no address\"",))
    primary = (await checked(start_nsd, zones(ours)))["dns_primary"]
    assert primary.health is DnsHealth.FAILING
    assert "has no address (no A or AAAA records)" in primary.detail


async def test_a_domain_that_does_not_exist_fails(start_nsd: StartNsd) -> None:
    # a name inside the served zone with no records: nsd's own NXDOMAIN (a name outside
    # every zone would be REFUSED instead)
    mx = (await checked(start_nsd, zones(), domain=f"nothere.{DOMAIN}"))["dns_mx"]
    assert mx.health is DnsHealth.FAILING
    assert mx.detail.startswith(f"nothere.{DOMAIN} does not exist (NXDOMAIN)")


async def test_a_refusing_server_is_unknown(start_nsd: StartNsd) -> None:
    # example.org is not served here: nsd answers REFUSED for the backup's CNAME lookup
    mx = (await checked(start_nsd, {DOMAIN: our_zone()}))["dns_mx"]
    assert mx.health is DnsHealth.UNKNOWN
    assert "REFUSED" in mx.detail


async def test_a_server_that_never_answers_is_unknown_within_the_timeout(
        silent_port: int) -> None:
    timeout = 0.5
    started = time.monotonic()
    report = await check_dns(settings_for(silent_port, timeout=timeout))
    elapsed = time.monotonic() - started
    assert report.health is DnsHealth.UNKNOWN and not report.ok
    for check in report.checks:
        assert check.health is DnsHealth.UNKNOWN
        assert f"no answer from 127.0.0.1:{silent_port} within 0.5s" in check.detail
    # MX alongside A/AAAA: one timeout, not one per lookup
    assert elapsed < timeout + LOOKUP_SLACK
