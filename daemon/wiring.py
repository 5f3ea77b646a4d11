"""Builds the libraries' settings from the daemon's validated config (one place, no dicts)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from postfix_sync import MxSettings
from router_drivers import RouterSettings

from .config import Config, Secrets, WanAddress, resolve_secret_path
from .liveproof import LiveProof, ProofPlan, far_targets
from .model import Circuit


def router_settings(cfg: Config, secrets: Secrets) -> RouterSettings:
    r = cfg.router
    return RouterSettings(
        host=r.host,
        port=r.port,
        username=r.username,
        password=secrets.router_password,
        connect_timeout=r.connect_timeout,
        step_timeout=r.step_timeout,
        restart_timeout=r.restart_timeout,
        dialogue=dict(r.dialogue),
        key_file=resolve_secret_path(r.key_file) if r.key_file else None,
        known_hosts=r.known_hosts,
        interface=r.interface,
        netns=r.netns,
        # the dry-run driver starts on the primary circuit
        initial=r.primary.wan(),
    )


def mx_settings(cfg: Config) -> MxSettings | None:
    mx = cfg.backup_mx
    if mx is None:
        return None
    prefix = mx.postfix_prefix
    return MxSettings(
        host=mx.host,
        port=mx.port,
        user=mx.user,
        key_file=resolve_secret_path(mx.key_file),
        known_hosts=mx.known_hosts,
        domain=mx.domain,
        nexthop=mx.nexthop,
        connect_timeout=mx.connect_timeout,
        command_timeout=mx.command_timeout,
        smtp_timeout=mx.smtp_timeout,
        config_dir=mx.config_dir,
        postconf=f"{prefix}postconf",
        postmap=f"{prefix}postmap",
        postqueue=f"{prefix}postqueue",
        postfix=f"{prefix}postfix",
    )


def _subnet(w: WanAddress) -> IPv4Network:
    return IPv4Network(f"{w.address}/{w.netmask}", strict=False)


def proof_plans(cfg: Config) -> dict[Circuit, ProofPlan]:
    """The live proof of each circuit: its gateway, then the far targets (by default the
    primary's targets on neither WAN subnet: the first one is the primary's DSL gateway)."""
    r = cfg.router
    far = (tuple(r.live_proof_targets) if r.live_proof_targets is not None else
           far_targets(cfg.primary.targets, _subnet(r.primary), _subnet(r.backup)))
    return {Circuit.PRIMARY: ProofPlan(Circuit.PRIMARY, r.primary.gateway, far),
            Circuit.BACKUP: ProofPlan(Circuit.BACKUP, r.backup.gateway, far)}


def backup_targets(cfg: Config) -> tuple[IPv4Address, ...]:
    """What is probed of the backup circuit while the router is on it: `[backup_link]
    targets`, by default the live proof's far targets (empty: not probed)."""
    if not cfg.backup_link.enabled:
        return ()
    if cfg.backup_link.targets is not None:
        return tuple(cfg.backup_link.targets)
    return proof_plans(cfg)[Circuit.BACKUP].far


def live_proof(cfg: Config, privileged: bool) -> LiveProof | None:
    """None when `router.live_proof` is off."""
    if not cfg.router.live_proof:
        return None
    return LiveProof(proof_plans(cfg), timeout=cfg.router.live_proof_timeout,
                     echo_timeout=cfg.primary.timeout, privileged=privileged)
