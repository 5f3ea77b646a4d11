"""`dslfailover run | check | probe`: the daemon, config validation, one-shot health checks."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .common import Subcommands, add_command, add_json_arg, load_or_exit, print_json

if TYPE_CHECKING:
    from postfix_sync import Check

    from ..config import Config, Secrets

EXIT_NOPERM = 77  # EX_NOPERM: no way to send ICMP (systemd does not restart on it)


def register(sub: Subcommands) -> None:
    p = add_command(
        sub, "run", cmd_run, help="run the daemon in the foreground (systemd Type=notify)",
        description="Run the daemon in the foreground. Reads the router first (the router is "
                    "the truth about which circuit is in use), then watches the primary "
                    "circuit and acts. Logs go to the journal under systemd, else to stderr. "
                    "SIGTERM or SIGINT stops it cleanly at any moment (exit 0).",
        honours_stop=True)
    p.add_argument("--log-format", choices=["auto", "journal", "json", "console"],
                   help="override [log].format")
    add_command(
        sub, "check", cmd_check, help="validate the config and its secret files",
        description="Validate the config file and read its secret files (never printing "
                    "them). Exit 0 with a summary, or 78 with one line per problem: "
                    "<field.path>: <why>.")
    p = add_command(
        sub, "probe", cmd_probe, help="run every health check once",
        description="Run every check once: ICMP to each primary target, the SMTP probe "
                    "through the tunnel, a read of the router, the backup MX verification. "
                    "Exit 0 when all are healthy, 1 otherwise.")
    add_json_arg(p)
    p = add_command(
        sub, "demo", cmd_demo, config=False,
        help="the lab, an outage and a recovery, as a timeline (root)",
        description="Bring up a whole simulated site in network namespaces, run the daemon "
                    "in it, cut the primary circuit, show what happens, restore it, fail "
                    "back and tear everything down. Nothing leaves the namespaces.")
    add_json_arg(p, "one JSON object per timeline entry")
    p.add_argument("--console", choices=["menu", "cli"], default="menu",
                   help="which Netopia console the emulated router speaks (default: menu)")


def cmd_demo(args: argparse.Namespace) -> int:
    from ..lab.demo import main as demo_main

    return demo_main(args.json, args.console)


def _live_proof_line(cfg: Config) -> str:
    """What `check` says about the live proof after a move."""
    from ..model import Circuit
    from ..wiring import proof_plans

    if not cfg.router.live_proof:
        return "off: the read-back alone ends a move"
    far = proof_plans(cfg)[Circuit.BACKUP].far
    within = f", within {cfg.router.live_proof_timeout:g}s"
    if not far:
        return "the new gateway only (no far targets)" + within
    return f"the new gateway, then one of {', '.join(map(str, far))}" + within


def cmd_check(args: argparse.Namespace) -> int:
    from ..config_file import config_path

    cfg, secrets = load_or_exit(args)
    p, r = cfg.primary, cfg.router
    worst = (p.down_after - 1) * p.interval + p.interval + p.timeout
    lines = [
        f"config ok: {config_path(args.config)}",
        f"site          {cfg.site}  (MQTT prefix {cfg.mqtt_prefix})",
        f"primary       {len(p.targets)} targets ({', '.join(map(str, p.targets))}), quorum "
        f"{p.quorum}, every {p.interval:g}s, timeout {p.timeout:g}s",
        f"              down after {p.down_after} failed rounds (at most ~{worst:.1f}s), "
        f"up after {p.up_after} good rounds",
        f"router        {r.driver} at {r.host}:{r.port}; password "
        f"{'set' if secrets.router_password else 'none'}",
        f"  primary     {r.primary.wan()}",
        f"  backup      {r.backup.wan()}",
        f"  live proof  {_live_proof_line(cfg)}",
        "tunnel probe  " + (f"{cfg.tunnel.smtp_host}:{cfg.tunnel.smtp_port}"
                            if cfg.tunnel else "off"),
        "backup MX     " + (f"{cfg.backup_mx.user}@{cfg.backup_mx.host}:{cfg.backup_mx.port}, "
                            f"{cfg.backup_mx.domain} -> {cfg.backup_mx.nexthop}, repair "
                            f"{'on' if cfg.backup_mx.repair else 'off'}"
                            if cfg.backup_mx else "off"),
        "mqtt          " + (f"{cfg.mqtt.host}:{cfg.mqtt.port}"
                            f"{' tls' if cfg.mqtt.tls else ''} under {cfg.mqtt_prefix}/, "
                            f"commands {'on' if cfg.mqtt.commands else 'off'}, probes on "
                            f"change or every {cfg.mqtt.probe_interval:g}s"
                            if cfg.mqtt.enabled else "off"),
        "discovery     " + (f"Home Assistant under {cfg.mqtt.discovery_prefix}/"
                            if cfg.mqtt.enabled and cfg.mqtt.discovery else "off"),
        "metrics       " + (f"http://{cfg.metrics.host}:{cfg.metrics.port}/metrics"
                            if cfg.metrics.enabled else "off"),
        f"failback      {cfg.failback.mode}, hold-down {cfg.failback.hold_down:g}s "
        f"(up to {cfg.failback.hold_down_max:g}s when flapping)",
        *_outside_lines(cfg, len(secrets.notify_urls)),
        f"state         {cfg.state_dir}; control socket {cfg.control.socket}",
    ]
    print("\n".join(lines))
    return 0


def _outside_lines(cfg: Config, urls: int) -> list[str]:
    """`check`'s summary of [dns], [backup_link] and [notify]."""
    from ..wiring import backup_targets

    d, n = cfg.dns, cfg.notify
    far = backup_targets(cfg)
    servers = ", ".join(map(str, d.nameservers)) if d and d.nameservers else "the system's"
    return [
        "dns           " + (f"MX of {cfg.dns_domain}: {d.primary_mx} before {d.backup_mx}; "
                            f"every {d.interval:g}s on primary, name servers {servers}"
                            if d else "off"),
        "backup link   " + (f"{len(far)} far targets ({', '.join(map(str, far))}) while "
                            "on the backup circuit" if far else "off"),
        "notify        " + (f"{urls} Apprise URL(s), {', '.join(n.kinds)}, at most "
                            f"{n.max_per_hour}/hour" + (f", quiet {n.quiet_hours}"
                                                        if n.quiet_hours else "")
                            if n else "off"),
    ]


def cmd_run(args: argparse.Namespace) -> int:
    # a stop signal that comes during these imports is recorded (main): the daemon honours it
    from .. import instance
    from ..probes.icmp import ProbeSetupError
    from ..process import run_daemon
    from ..publish import logs

    cfg, secrets = load_or_exit(args)
    try:
        with instance.held(cfg):   # before the router, the sockets and MQTT
            logs.configure(args.log_format or cfg.log.format, cfg.log.level, site=cfg.site)
            run_daemon(cfg, secrets)
    except instance.AlreadyRunning as exc:
        print(f"dslfailover: {exc}", file=sys.stderr)
        return instance.EXIT_RUNNING
    except ProbeSetupError as exc:
        print(f"dslfailover: {exc}", file=sys.stderr)
        return EXIT_NOPERM
    return 0


async def run_probes(cfg: Config, secrets: Secrets) -> list[Check]:
    import asyncio

    from postfix_sync import Check, MxError
    from router_drivers import RouterError, create_driver

    from ..executor import RemoteMx, classify
    from ..probes.icmp import ProbeSetupError, choose_privileged, echo_all
    from ..probes.smtp import smtp_probe
    from ..wiring import mx_settings, router_settings

    checks: list[Check] = []
    p = cfg.primary
    try:
        replies = await echo_all(list(p.targets), timeout=p.timeout,
                                 privileged=choose_privileged(p.privileged), source=p.source)
        for r in replies:
            checks.append(Check(f"icmp {r.target}", r.ok,
                                     f"{r.rtt_ms:.1f} ms" if r.ok and r.rtt_ms is not None
                                     else (r.error or "no reply")))
    except ProbeSetupError as exc:
        checks.append(Check("icmp", False, str(exc)))
    if cfg.tunnel is not None:
        t = cfg.tunnel
        res = await smtp_probe(t.smtp_host, t.smtp_port, timeout=t.timeout, ehlo_name=t.ehlo_name)
        checks.append(Check(f"smtp {t.smtp_host}:{t.smtp_port}", res.ok,
                                 res.detail if res.ok else f"{res.step}: {res.detail}"))
    driver = create_driver(cfg.router.driver, router_settings(cfg, secrets))
    try:
        async with asyncio.timeout(cfg.router.action_timeout):
            wan = await driver.read_wan()
        circuit = classify(wan, cfg.router.primary.wan(), cfg.router.backup.wan())
        checks.append(Check("router", circuit.value != "unknown",
                                 f"{wan} ({circuit.value} circuit)"))
        if circuit.value == "backup":
            checks.extend(await _backup_link(cfg))
    except (RouterError, TimeoutError) as exc:
        checks.append(Check("router", False, str(exc) or "timed out"))
    if cfg.dns is not None:
        from ..probes.dns import DnsSettings, check_dns  # dnspython: only with [dns]

        settings = DnsSettings.from_config(cfg)
        assert settings is not None
        dns = await check_dns(settings)
        checks.extend(Check(c.name, c.ok, c.detail) for c in dns.checks)
    mxs = mx_settings(cfg)
    if mxs is not None:
        try:
            async with asyncio.timeout(cfg.actions.mx_timeout):
                report = await RemoteMx(mxs).verify()
            checks.extend(Check(f"mx {c.name}", c.ok, c.detail) for c in report.checks)
        except (MxError, TimeoutError) as exc:
            checks.append(Check("mx", False, str(exc) or "timed out"))
    return checks


async def _backup_link(cfg: Config) -> list[Check]:
    """The router is on the backup circuit: do its far targets answer (the daemon's
    `backup_link`, in one round)?"""
    from postfix_sync import Check

    from ..probes.icmp import choose_privileged, echo_all
    from ..wiring import backup_targets

    far = backup_targets(cfg)
    if not far:
        return []
    p = cfg.primary
    replies = await echo_all(list(far), timeout=p.timeout,
                             privileged=choose_privileged(p.privileged), source=p.source)
    answered = sum(r.ok for r in replies)
    quorum = min(p.quorum, len(far))
    return [Check("backup_link", answered >= quorum,
                  f"{answered}/{len(far)} far targets answered through the backup circuit "
                  f"(quorum {quorum})")]


def cmd_probe(args: argparse.Namespace) -> int:
    import asyncio

    cfg, secrets = load_or_exit(args)
    checks = asyncio.run(run_probes(cfg, secrets))
    ok = all(c.ok for c in checks)
    if args.json:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
    return 0 if ok else 1
