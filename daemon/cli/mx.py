"""`dslfailover mx verify|repair|flush`: the backup MX by hand (DESIGN §6, §8).

With `[dns]`, `verify` also runs the DNS checks (`dns_mx`, `dns_primary`), alongside the
six, and even when the MX cannot be reached; the report is `mx_report`'s.

Exit codes: 0 all good; 1 a check failed (or is unknown), the MX could not be reached or
an action failed (with a message saying which); 78 the config is unusable.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .common import Subcommands, add_command, add_json_arg, load_or_exit, print_json
from .mx_report import show_verify_dict as show_verify_dict  # ops.py's import too
from .mx_report import verify_dict

if TYPE_CHECKING:
    from postfix_sync import MxError, MxSettings, VerifyReport

    from ..dns_checks import DnsReport
    from ..probes.dns import DnsSettings

EXIT_FAILED = 1


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "mx", help="the backup MX (customer's Postfix): verify, repair, flush",
        description="Check, repair or flush the backup MX over SSH (strict host keys).")
    actions = parser.add_subparsers(dest="mx_action", metavar="ACTION")
    actions.required = True
    helps = {
        "verify": "the six checks: transport/relay maps (source and compiled), freshness, "
                  "and an SMTP session from the MX to the tunnel address; with [dns], "
                  "the domain's MX records and our MX host's addresses too",
        "repair": "fix the domain's transport/relay entries, postmap, reload, verify "
                  "(opt-in; --dry-run shows the diff only)",
        "flush": "deliver mail queued for our domain now (postqueue -s, else -f)",
    }
    for name, text in helps.items():
        p = add_command(actions, name, _handler, help=text, description=text)
        add_json_arg(p)
        if name == "repair":
            p.add_argument("--dry-run", action="store_true",
                           help="print the unified diff; change nothing")


def _settings(args: argparse.Namespace) -> tuple[MxSettings, DnsSettings | None]:
    from ..config import EXIT_CONFIG
    from ..probes.dns import DnsSettings
    from ..wiring import mx_settings

    cfg, _ = load_or_exit(args)
    settings = mx_settings(cfg)
    if settings is None:
        print("backup_mx: required for `dslfailover mx` (no [backup_mx] section)",
              file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return settings, DnsSettings.from_config(cfg)


def _failure(action: str, exc: MxError) -> str:
    from postfix_sync import MxConnectError

    kind = "cannot reach the backup MX" if isinstance(exc, MxConnectError) \
        else f"mx {action} failed"
    return f"{kind}: {exc}"


def _handler(args: argparse.Namespace) -> int:
    import asyncio

    from postfix_sync import MxError

    settings, dns = _settings(args)
    if args.mx_action == "verify":
        return asyncio.run(_verify(settings, dns, as_json=args.json))
    try:
        return asyncio.run(_run(args, settings))
    except MxError as exc:
        failure = _failure(args.mx_action, exc)
        if args.json:
            print_json({"ok": False, "error": failure})
        print(f"dslfailover: {failure}", file=sys.stderr)
        return EXIT_FAILED


async def _verify(settings: MxSettings, dns: DnsSettings | None, *, as_json: bool) -> int:
    """The six checks and, with `[dns]`, the DNS checks at the same time; one report."""
    import asyncio

    from postfix_sync import MxError
    from postfix_sync.client import BackupMx  # asyncssh: only for the mx commands

    async def mx_checks() -> VerifyReport | MxError:
        try:
            async with BackupMx(settings) as mx:
                return await mx.verify()
        except MxError as exc:
            return exc

    async def dns_checks() -> DnsReport | None:
        if dns is None:
            return None
        from ..probes.dns import check_dns  # dnspython: only with [dns]
        return await check_dns(dns)

    verified, dns_report = await asyncio.gather(mx_checks(), dns_checks())
    failure = _failure("verify", verified) if isinstance(verified, MxError) else None
    mx_report = None if isinstance(verified, MxError) else verified
    report = verify_dict(mx_report, dns_report, error=failure)
    if as_json:
        # verify keeps its {"ok", "checks"} shape when the MX is unreachable too
        print_json(report)
    elif dns_report is not None or failure is None:
        show_verify_dict(report)
    if failure is not None:
        print(f"dslfailover: {failure}", file=sys.stderr)
    return 0 if report["ok"] is True else EXIT_FAILED


async def _run(args: argparse.Namespace, settings: MxSettings) -> int:
    from postfix_sync.client import BackupMx  # asyncssh: only for the mx commands

    async with BackupMx(settings) as mx:
        if args.mx_action == "repair":
            repaired = await mx.repair(dry_run=args.dry_run)
            if args.json:
                print_json(repaired.as_dict())
            else:
                sys.stdout.write(repaired.diff or "(no change to any map source)\n")
                print(repaired.detail)
                if repaired.backups:
                    print("backups: " + ", ".join(repaired.backups))
                if repaired.verify is not None:
                    show_verify_dict(repaired.verify.as_dict())
            ok = repaired.verify is None or repaired.verify.ok
            return 0 if ok else EXIT_FAILED
        flushed = await mx.flush()
        if args.json:
            print_json(flushed.as_dict())
        else:
            print(f"ran: {flushed.command}")
            print(f"deferred for {settings.domain}: {flushed.deferred_before} before, "
                  f"{flushed.deferred_after} after")
            if flushed.detail:
                print(flushed.detail)
        return 0

