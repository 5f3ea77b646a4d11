"""`dslfailover mx verify|repair|flush`: the backup MX by hand (DESIGN §6, §8).

Exit codes: 0 all good; 1 a check failed, the MX could not be reached or an action
failed (with a message saying which); 78 the config is unusable.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .common import Subcommands, add_command, add_json_arg, load_or_exit, print_json

if TYPE_CHECKING:
    from postfix_sync import MxSettings, VerifyReport

EXIT_FAILED = 1


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "mx", help="the backup MX (customer's Postfix): verify, repair, flush",
        description="Check, repair or flush the backup MX over SSH (strict host keys).")
    actions = parser.add_subparsers(dest="mx_action", metavar="ACTION")
    actions.required = True
    helps = {
        "verify": "the six checks: transport/relay maps (source and compiled), freshness, "
                  "and an SMTP session from the MX to the tunnel address",
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


def _settings(args: argparse.Namespace) -> MxSettings:
    from ..config import EXIT_CONFIG
    from ..wiring import mx_settings

    cfg, _ = load_or_exit(args)
    settings = mx_settings(cfg)
    if settings is None:
        print("backup_mx: required for `dslfailover mx` (no [backup_mx] section)",
              file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return settings


def _handler(args: argparse.Namespace) -> int:
    import asyncio

    from postfix_sync import MxConnectError, MxError

    settings = _settings(args)
    try:
        return asyncio.run(_run(args, settings))
    except MxError as exc:
        kind = "cannot reach the backup MX" if isinstance(exc, MxConnectError) \
            else f"mx {args.mx_action} failed"
        if args.json:
            # verify keeps its {"ok", "checks"} shape (no check could run); all say why
            shape: dict[str, Any] = {"ok": False, "checks": []} \
                if args.mx_action == "verify" else {"ok": False}
            print_json({**shape, "error": f"{kind}: {exc}"})
        print(f"dslfailover: {kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _run(args: argparse.Namespace, settings: MxSettings) -> int:
    from postfix_sync.client import BackupMx  # asyncssh: only for the mx commands

    async with BackupMx(settings) as mx:
        if args.mx_action == "verify":
            report = await mx.verify()
            _show_verify(report, args.json)
            return 0 if report.ok else EXIT_FAILED
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
                    _show_verify(repaired.verify, False)
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


def _show_verify(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        show_verify_dict(report.as_dict())


def show_verify_dict(report: dict[str, Any]) -> None:
    """A verify report (`VerifyReport.as_dict()`, also as the daemon sends it) as a table:
    one line per check, then the verdict."""
    checks = [c for c in report.get("checks") or [] if isinstance(c, dict)]
    rows = [(str(c.get("name", "?")), "ok" if c.get("ok") is True else "FAIL",
             c.get("detail", "")) for c in checks]
    width = max((len(r[0]) for r in rows), default=0)
    for name, verdict, detail in rows:
        print(f"{name:<{width}}  {verdict:<4}  {detail}")
    failed = sum(verdict != "ok" for _, verdict, _ in rows)
    print(f"backup MX: {'ready' if report.get('ok') is True else 'NOT ready'} "
          f"({failed} of {len(rows)} checks failed)")
