"""The daemon watching outside the office, running for real in this event loop: its
`[dns]` checks against a real NSD on loopback (or a nameserver that never answers), its
`[notify]` notices to a JSON endpoint on loopback, and its probes of the backup circuit
(loopback targets) while the dry-run router starts on it.

Every address is loopback. The backup circuit going down is not tested here: every
127.0.0.0/8 address answers echo requests on Linux; the lab tests cut a circuit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.dns_checks import DNS_CHECK_NAMES
from daemon.lab.nsd import StartNsd
from daemon.model import AuditEvent, DnsHealth, EventKind, State
from router_drivers import RouterSettings, create_driver
from tests.dns.conftest import BACKUP_MX, PRIMARY_PUBLIC, our_zone, zones
from tests.harness import BACKUP, daemon_config, running_daemon, wait_daemon
from tests.notify.conftest import TOKEN, Endpoint

from .conftest import LOOKUP_TIMEOUT, dns_section

# The silent nameserver's lookups wait this long: short, so the run ends quickly.
SILENT_TIMEOUT = 0.5
# Bounds each wait for what the daemon shows: its first DNS run, a notice, a verdict.
WAIT = 20.0
# The backup circuit's far targets: loopback, they always answer.
BACKUP_TARGETS = ["127.0.0.2", "127.0.0.3"]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """tests/notify's JSON endpoint on 127.0.0.1; requests (under Apprise) must not send
    through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    e = Endpoint().start()
    try:
        yield e
    finally:
        e.stop()


def dns_config(tmp: Path, port: int, timeout: float = LOOKUP_TIMEOUT) -> Path:
    return daemon_config(tmp, site="outside", dns=dns_section(port, timeout))


def shown(daemon: Daemon, field: str) -> object:
    """A field of the state snapshot, as the retained state JSON carries it."""
    return None if daemon.snapshot is None else daemon.snapshot.as_dict()[field]


def alarms(daemon: Daemon, prefix: str) -> list[AuditEvent]:
    return [e for e in daemon.audit.recent
            if e.kind == EventKind.PROBE_ALARM and e.reason.startswith(prefix)]


async def test_correct_records_show_dns_ok_soon_after_start(
        tmp_path: Path, start_nsd: StartNsd) -> None:
    nsd = await start_nsd(zones())
    async with running_daemon(dns_config(tmp_path, nsd.port),
                              ready=[State.PRIMARY]) as daemon:
        await wait_daemon(daemon, lambda d: shown(d, "dns") == "ok", "dns ok in the state",
                          WAIT)
        assert daemon.status()["dns"] == "ok"
        assert daemon.probes.dns_report is not None
        assert daemon.probes.dns_report.summary() == "dns ok"
        assert not alarms(daemon, "DNS")


async def test_a_missing_backup_mx_fails_with_an_alarm_carrying_the_records(
        tmp_path: Path, start_nsd: StartNsd) -> None:
    nsd = await start_nsd(zones(our_zone(mx=("10 mail",))))
    async with running_daemon(dns_config(tmp_path, nsd.port),
                              ready=[State.PRIMARY]) as daemon:
        await wait_daemon(daemon, lambda d: shown(d, "dns") == "failing",
                          "dns failing in the state", WAIT)
        assert daemon.status()["dns"] == "failing"
        assert daemon.status()["state"] == "primary"   # recorded, not acted on
        [alarm] = alarms(daemon, "DNS check failed")
    assert f"the backup MX {BACKUP_MX} is missing" in alarm.reason
    checks = {c["name"]: c for c in alarm.detail["checks"]}
    assert tuple(checks) == DNS_CHECK_NAMES
    assert checks["dns_mx"]["health"] == "failing"
    assert checks["dns_mx"]["records"] == ["10 mail.unixwiz.net."]
    assert checks["dns_primary"]["records"] == list(PRIMARY_PUBLIC)
    assert alarm.detail["health"] == "failing"


async def test_a_silent_nameserver_leaves_dns_unknown_without_an_alarm(
        tmp_path: Path, silent_port: int) -> None:
    async with running_daemon(dns_config(tmp_path, silent_port, SILENT_TIMEOUT),
                              ready=[State.PRIMARY]) as daemon:
        # the run has ended, and the machine has taken its verdict off the queue
        await wait_daemon(daemon, lambda d: d.probes.dns_report is not None
                          and d.events.empty(), "the first DNS run to be decided on", WAIT)
        assert daemon.probes.dns_report is not None
        assert daemon.probes.dns_report.health is DnsHealth.UNKNOWN
        assert daemon.ctx is not None and daemon.ctx.dns is DnsHealth.UNKNOWN
        assert daemon.status()["dns"] == "unknown"
        assert not alarms(daemon, "DNS")


async def test_the_start_transition_reaches_the_notify_endpoint(
        tmp_path: Path, endpoint: Endpoint) -> None:
    urls = tmp_path / "notify.urls"
    urls.write_text(f"# the test's endpoint\n{endpoint.url()}\n")
    urls.chmod(0o600)
    cfg = daemon_config(tmp_path, site="outside", notify={"urls_file": str(urls),
                                                          "timeout": 5.0})
    async with running_daemon(cfg, ready=[State.PRIMARY]):
        bodies = await endpoint.wait_for(1, "notices of the start")
    starts = [b for b in bodies if "starting -> primary" in b["message"]]
    assert len(starts) == 1, bodies
    assert starts[0]["title"] == "dslfailover outside: transition"
    assert starts[0]["type"] == "info"
    assert TOKEN not in starts[0]["message"]


def backup_config(tmp: Path) -> Path:
    return daemon_config(tmp, site="outside", primary={"up_after": 3},
                         backup_link={"targets": BACKUP_TARGETS})


async def test_on_the_backup_circuit_answering_targets_show_backup_link_up(
        tmp_path: Path) -> None:
    driver = create_driver("dry-run", RouterSettings(initial=BACKUP))
    async with running_daemon(backup_config(tmp_path), ready=[State.BACKUP],
                              driver=driver) as daemon:
        await wait_daemon(daemon, lambda d: shown(d, "backup_link") == "up",
                          "backup_link up in the state", WAIT)
        status = daemon.status()
        assert status["backup_link"] == "up" and status["circuit"] == "backup"
        assert not alarms(daemon, "both circuits down")


async def test_on_primary_the_backup_link_stays_unknown(tmp_path: Path) -> None:
    async with running_daemon(backup_config(tmp_path), ready=[State.PRIMARY]) as daemon:
        # up_after rounds to the primary's targets: the backup's would have had as long
        await wait_daemon(daemon, lambda d: shown(d, "primary_link") == "up",
                          "primary_link up in the state", WAIT)
        assert daemon.status()["backup_link"] == "unknown"
        assert daemon.probes.backup is not None and not daemon.probes.plan.backup
