"""How `dslfailover mx verify` reports (DESIGN §6, §8): the six backup MX checks and,
with `[dns]`, the DNS checks after them, in one `{"ok", "checks"}` report (plus `"dns":
<health>` with `[dns]`, `"error"` when the MX could not be reached), as JSON or a table.

Kept apart from `mx.py` so the commands read as commands; `show_verify_dict` also
prints the reports the daemon sends (`dslfailover status`, `trigger`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from postfix_sync import VerifyReport

    from ..dns_checks import DnsReport


def verify_dict(mx: VerifyReport | None, dns: DnsReport | None, *,
                error: str | None = None) -> dict[str, Any]:
    """One report: the MX checks (none when it could not be reached: `error` says why),
    then the DNS checks; `ok` only when every check is ok and the MX was reached."""
    report: dict[str, Any] = mx.as_dict() if mx is not None else {"ok": False, "checks": []}
    if error is not None:
        report = {**report, "ok": False, "error": error}
    if dns is not None:
        report["checks"] = [*report["checks"], *(c.as_dict() for c in dns.checks)]
        report["ok"] = bool(report["ok"]) and dns.ok
        report["dns"] = dns.health.value
    return report


def _verdict(check: dict[str, Any]) -> str:
    if check.get("ok") is True:
        return "ok"
    return "UNKNOWN" if check.get("health") == "unknown" else "FAIL"


def show_verify_dict(report: dict[str, Any]) -> None:
    """A verify report (`verify_dict`, `VerifyReport.as_dict()`, also as the daemon sends
    it) as a table: one line per check, then the verdict on the backup MX and, when the
    report has DNS checks, the verdict on DNS."""
    from ..dns_checks import DNS_CHECK_NAMES

    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    rows = [(str(c.get("name", "?")), _verdict(c), str(c.get("detail", ""))) for c in checks]
    width = max((len(r[0]) for r in rows), default=0)
    verdict_width = max([4, *(len(r[1]) for r in rows)])   # "FAIL", or "UNKNOWN"
    for name, verdict, detail in rows:
        print(f"{name:<{width}}  {verdict:<{verdict_width}}  {detail}")
    mx_rows = [r for r in rows if r[0] not in DNS_CHECK_NAMES]
    dns_rows = [r for r in rows if r[0] in DNS_CHECK_NAMES]
    mx_ok = "error" not in report and all(r[1] == "ok" for r in mx_rows) \
        if "dns" in report else report.get("ok") is True
    print(f"backup MX: {'ready' if mx_ok else 'NOT ready'} "
          f"({_failed(mx_rows)} of {len(mx_rows)} checks failed)")
    if "dns" in report:
        print(f"dns: {report['dns']} ({_failed(dns_rows)} of {len(dns_rows)} checks "
              f"not ok)")


def _failed(rows: list[tuple[str, str, str]]) -> int:
    return sum(verdict != "ok" for _, verdict, _ in rows)
