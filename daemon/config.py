"""The daemon's configuration: TOML, validated once by pydantic 2, frozen, passed in.

Section and key names are a contract (DESIGN §8): users' files rely on them. Add keys,
rename none. Secrets are never stored here as text: `*_file` keys name files that are read
by `load_secrets()`; under systemd a file of the same name in `$CREDENTIALS_DIRECTORY`
(LoadCredential=) wins over the configured path.
"""

from __future__ import annotations

import grp
import os
import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from postfix_sync.nexthop import probe_target
from router_drivers import DIALOGUES, DriverName, Secret, WanConfig
from router_drivers.dialogue import Dialogue, restarts
from router_drivers.dialogue import validate as validate_dialogue

# the file's own side (where, its TOML, its errors, the control socket's default)
from .config_file import DEFAULT_CONFIG as DEFAULT_CONFIG
from .config_file import DEFAULT_SOCKET, parse_toml, read_text, socket_path_problem
from .config_file import EXIT_CONFIG as EXIT_CONFIG
from .config_file import ConfigError as ConfigError
from .config_file import config_path as config_path
from .config_outside import BackupLinkConfig, DnsConfig, NotifyConfig
from .config_types import Host, Port, Seconds, Section, check_host


def _ehlo_name(value: str) -> str:
    """The EHLO argument: a host name, or an address literal like [192.0.2.1]."""
    if value.startswith("[") and value.endswith("]"):
        check_host(value[1:-1])
    else:
        check_host(value)
    return value


def topic_prefix(value: str) -> str:
    """`value` without its outer slashes, when it can head MQTT topics (the publisher's
    rule too); ValueError when it is empty or holds a wildcard."""
    prefix = value.strip("/")
    if not prefix or any(c in prefix for c in "+#\0"):
        raise ValueError(f"{value!r} is not a usable topic prefix (empty, or has the "
                         "wildcards + or #)")
    return prefix


TopicPrefix = Annotated[str, AfterValidator(topic_prefix)]


class PrimaryConfig(Section):
    """Health of the primary circuit.

    Defaults, and why (DESIGN §10):
    - A round probes every target at once every `interval` and waits `timeout`.
      Detection after a cut is at most (down_after - 1) * interval + interval + timeout
      = 3 * 0.5 + 0.5 + 0.8 = 2.8 s.
    - A round fails only when fewer than `quorum` targets answer. At 20 % random loss on
      each of 3 targets a round fails with p = 0.2**3 = 0.008 (0.36**3 = 0.047 when both
      the echo and the reply can be dropped); `down_after` = 4 failed rounds in a row then
      has p = 4e-9 (5e-6) per round: over a 10-minute soak of 1200 rounds, an expected
      5e-6 (6e-3) false failovers.
    - With a single target the same arithmetic gives 0.2**4 * 1200 = 1.9: use several.
    """

    targets: list[IPv4Address] = Field(min_length=1, max_length=16)
    interval: Seconds = 0.5
    timeout: Seconds = 0.8
    quorum: Annotated[int, Field(ge=1)] = 1
    down_after: Annotated[int, Field(ge=1, le=1000)] = 4
    up_after: Annotated[int, Field(ge=1, le=100000)] = 20
    window: Annotated[int, Field(ge=1, le=10000)] = 20  # rounds kept for loss/RTT figures
    source: IPv4Address | None = None  # source address for the probes (optional)
    privileged: Literal["auto", "yes", "no"] = "auto"
    # append every probe round as a JSON line here (for support and the benchmarks, which
    # replay the exact stream through other tools' decision rules); off by default
    record: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PrimaryConfig:
        if self.quorum > len(self.targets):
            raise ValueError(
                f"quorum {self.quorum} is more than the {len(self.targets)} targets: "
                "no round could ever be good")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets lists the same address twice")
        if self.timeout >= self.interval * self.down_after:
            raise ValueError(
                f"timeout {self.timeout}s is not shorter than interval * down_after "
                f"({self.interval * self.down_after}s): one slow reply would span the "
                "whole down window")
        return self


class TunnelConfig(Section):
    """The SMTP probe from the inside host through the tunnel (runs on primary too)."""

    smtp_host: Host
    smtp_port: Port = 25
    interval: Seconds = 30.0
    timeout: Seconds = 5.0   # per SMTP step: connect, banner, EHLO
    ehlo_name: Annotated[str, AfterValidator(_ehlo_name)] = "dslfailover.invalid"
    fail_after: Annotated[int, Field(ge=1)] = 2  # failed probes in a row before `failing`


class WanAddress(Section):
    address: IPv4Address
    netmask: IPv4Address
    gateway: IPv4Address

    @model_validator(mode="after")
    def _gateway_on_link(self) -> WanAddress:
        try:
            net = IPv4Network(f"{self.address}/{self.netmask}", strict=False)
        except ValueError as exc:
            raise ValueError(f"netmask {self.netmask} is not a valid netmask") from exc
        if self.gateway not in net:
            raise ValueError(f"gateway {self.gateway} is not on the subnet {net}")
        if self.gateway == self.address:
            raise ValueError("gateway equals the address")
        return self

    def wan(self) -> WanConfig:
        return WanConfig(self.address, self.netmask, self.gateway)


class RouterConfig(Section):
    driver: DriverName = "netopia-menu"
    host: Host = "192.168.1.1"
    port: Port = 23
    username: str | None = None
    password_file: Path | None = None
    connect_timeout: Seconds = 5.0
    step_timeout: Seconds = 10.0
    restart_timeout: Seconds = 90.0
    action_timeout: Seconds = 180.0  # bounds a whole apply (login, dialogue, restart, read-back)
    # After an apply, prove that the new circuit carries traffic before the MX checks and
    # `backup`/`primary`: its gateway answers ICMP from this host through the router, then
    # at least one far target does (daemon/liveproof.py). A router that reports the new
    # address but does not route is a fault.
    live_proof: bool = True
    live_proof_timeout: Seconds = 15.0  # bounds the whole proof (gateway, then far targets)
    # far targets of the proof; default: the primary's targets on neither WAN subnet
    live_proof_targets: list[IPv4Address] | None = Field(default=None, max_length=16)
    # overrides of the console dialogue (labels, menu path, command templates): see README
    dialogue: dict[str, Any] = Field(default_factory=dict)
    key_file: Path | None = None      # ssh driver
    known_hosts: Path | None = None   # ssh driver
    interface: str | None = None      # linux driver
    netns: str | None = None          # linux driver
    primary: WanAddress
    backup: WanAddress

    @model_validator(mode="after")
    def _distinct(self) -> RouterConfig:
        if self.primary.wan() == self.backup.wan():
            raise ValueError("primary and backup are the same WAN config")
        if self.driver == "ssh" and (self.key_file is None or self.known_hosts is None):
            raise ValueError("the ssh driver needs key_file and known_hosts")
        if self.driver == "linux" and not self.interface:
            raise ValueError("the linux driver needs interface")
        return self


_NEXTHOP = re.compile(r"^[a-z0-9-]+:(\[[^\]]+\]|[^\[\]:\s]+)(:\d{1,5})?$", re.IGNORECASE)


class BackupMxConfig(Section):
    host: Host
    port: Port = 22
    user: str = "dslfailover"
    key_file: Path
    known_hosts: Path
    domain: str
    nexthop: str
    repair: bool = False
    flush: bool = True
    verify_interval: Seconds = 300.0  # re-verify this often while on backup
    # a second flush this long after the first, for mail that was still mid-delivery to
    # the dead tunnel when we failed over (Postfix defers it only after its
    # smtp_connect_timeout, 30 s by default); 0 turns it off
    reflush_after: Annotated[float, Field(ge=0, le=3600)] = 45.0
    connect_timeout: Seconds = 10.0
    command_timeout: Seconds = 20.0
    smtp_timeout: Seconds = 10.0      # each step of the mail_path SMTP dialogue
    config_dir: str | None = None     # Postfix config dir on the MX, if not the default
    postfix_prefix: str = ""          # e.g. "sudo -n " before postmap/postfix/postqueue

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+",
                            value):
            raise ValueError(f"{value!r} is not a domain name")
        return value

    @field_validator("nexthop")
    @classmethod
    def _nexthop(cls, value: str) -> str:
        value = value.strip()
        if not _NEXTHOP.match(value):
            raise ValueError(f"{value!r} is not a Postfix nexthop like smtp:[192.0.2.1]:25")
        # the mail_path probe connects to its host and port: both must be usable
        host, _ = probe_target(value)
        try:
            check_host(host)
        except ValueError as exc:
            raise ValueError(f"{value!r}: host {host!r}: {exc}") from None
        return value


class MqttConfig(Section):
    enabled: bool = True
    host: Host = "localhost"
    port: Port = 1883
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    prefix: TopicPrefix | None = None  # default dslfailover/<site>
    client_id: str | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    connect_timeout: Seconds = 5.0
    buffer: Annotated[int, Field(ge=10, le=100000)] = 1000  # events kept while the broker is away
    commands: bool = False          # accept <prefix>/cmd
    discovery: bool = False         # Home Assistant MQTT discovery
    discovery_prefix: TopicPrefix = "homeassistant"
    # `<prefix>/probe/<target>` (retained) goes out when a target's ok flips or its loss
    # moves by `probe_loss_step` from the last published value, else at most every
    # `probe_interval` seconds (the latest summary then); 0 publishes every round
    probe_interval: Annotated[float, Field(ge=0, le=86400)] = 10.0
    probe_loss_step: Annotated[float, Field(gt=0, le=1)] = 0.1

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set but username is not")
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false")
        return self


class FailbackConfig(Section):
    mode: Literal["manual", "auto", "trial"] = "manual"
    hold_down: Annotated[float, Field(ge=0, le=86400)] = 300.0
    hold_down_max: Annotated[float, Field(ge=0, le=7 * 86400)] = 3600.0
    flap_window: Annotated[float, Field(ge=0, le=7 * 86400)] = 3600.0
    trial_interval: Seconds = 900.0   # trial: try the primary this often while on backup
    trial_check: Seconds = 60.0       # trial: revert if the primary fails within this time
    source: IPv4Address | None = None  # auto: source address on the primary modem's segment

    @model_validator(mode="after")
    def _consistent(self) -> FailbackConfig:
        if self.hold_down_max < self.hold_down:
            raise ValueError("hold_down_max is shorter than hold_down")
        if self.mode == "auto" and self.source is None:
            raise ValueError(
                "mode auto needs source: a probe path to the primary circuit that does not "
                "go through the router's current WAN")
        if self.mode == "trial" and self.trial_check >= self.trial_interval:
            raise ValueError("trial_check must be shorter than trial_interval")
        return self


class ActionsConfig(Section):
    retry_initial: Seconds = 5.0   # first retry after a failed action (fault)
    retry_max: Seconds = 300.0     # backoff cap
    mx_timeout: Seconds = 60.0     # bounds one verify/repair/flush


class ControlConfig(Section):
    socket: Path = DEFAULT_SOCKET
    group: str | None = None

    @field_validator("socket")
    @classmethod
    def _bindable(cls, value: Path) -> Path:
        problem = socket_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class MetricsConfig(Section):
    enabled: bool = False
    host: Host = "127.0.0.1"
    port: Port = 9468


class LogConfig(Section):
    format: Literal["auto", "journal", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(Section):
    site: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    # set by `dslfailover lab up` in the configs it writes: such a config aims at the
    # lab's addresses and runs only inside that lab's `inside` namespace (host_problems)
    lab: Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")] | None = None
    state_dir: Path = Path("/var/lib/dslfailover")
    primary: PrimaryConfig
    tunnel: TunnelConfig | None = None
    router: RouterConfig
    backup_mx: BackupMxConfig | None = None
    mqtt: MqttConfig = MqttConfig()
    failback: FailbackConfig = FailbackConfig()
    actions: ActionsConfig = ActionsConfig()
    control: ControlConfig = ControlConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    dns: DnsConfig | None = None
    backup_link: BackupLinkConfig = BackupLinkConfig()
    notify: NotifyConfig | None = None

    @property
    def dns_domain(self) -> str | None:
        """The domain whose MX records `[dns]` checks (None without `[dns]`)."""
        if self.dns is None:
            return None
        if self.dns.domain is not None:
            return self.dns.domain
        assert self.backup_mx is not None  # parse_config refuses [dns] without either
        return self.backup_mx.domain

    @property
    def mqtt_prefix(self) -> str:
        return self.mqtt.prefix or f"dslfailover/{self.site}"


@dataclass(frozen=True)
class Secrets:
    """Secrets read from files; repr never shows them."""

    router_password: Secret | None = None
    mqtt_password: Secret | None = None
    notify_urls: tuple[Secret, ...] = ()   # [notify] urls_file: Apprise URLs


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    return ".".join(parts) or "(top)"


def _describe(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required, missing"
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type",) and not isinstance(err["input"], dict):
        return f"{msg} (got {err['input']!r})"
    return msg


def parse_config(text: str, source: str = "<config>") -> Config:
    data = parse_toml(text, source)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_field_path(e['loc'])}: {_describe(e)}" for e in exc.errors()]
        raise ConfigError(source, problems) from None
    if cfg.dns is not None and cfg.dns.domain is None and cfg.backup_mx is None:
        raise ConfigError(source, ["dns.domain: required without a [backup_mx] section "
                                   "(whose domain it takes by default)"])
    # the dialogue's own validator, the one the driver uses: refused here, not at apply
    dialogue_name = DIALOGUES.get(cfg.router.driver)
    if dialogue_name is not None:
        merged, problems = validate_dialogue(dialogue_name, cfg.router.dialogue)
        if problems:
            raise ConfigError(source, problems)
        r = cfg.router
        if restarts(Dialogue(dialogue_name, merged)) and r.action_timeout <= r.restart_timeout:
            # the console runs a change only after a restart, which the apply waits for
            raise ConfigError(source, [
                f"router.action_timeout: {r.action_timeout:g}s is not longer than "
                f"restart_timeout {r.restart_timeout:g}s: every apply would time out "
                "while the router restarts"])
    elif cfg.router.dialogue:
        raise ConfigError(source, [f"router.dialogue: the {cfg.router.driver} driver has no "
                                   "dialogue to override"])
    return cfg


def load_config(path: Path) -> Config:
    return resolve_relative(parse_config(read_text(path), str(path)), path.parent)


# Secret and key files may be given relative to the config file's folder, so that a
# config and its secrets can live side by side (/etc/dslfailover/router.password).
_FILE_KEYS = {
    "router": ("password_file", "key_file", "known_hosts"),
    "backup_mx": ("key_file", "known_hosts"),
    "mqtt": ("password_file", "ca_file"),
    "notify": ("urls_file",),
}


def resolve_relative(cfg: Config, base: Path) -> Config:
    updates: dict[str, Any] = {}
    for section, keys in _FILE_KEYS.items():
        model = getattr(cfg, section)
        if model is None:
            continue
        changed = {k: base / v for k in keys
                   if (v := getattr(model, k)) is not None and not v.is_absolute()}
        if changed:
            updates[section] = model.model_copy(update=changed)
    return cfg.model_copy(update=updates) if updates else cfg


def resolve_secret_path(path: Path) -> Path:
    """Under systemd, `$CREDENTIALS_DIRECTORY/<name>` (LoadCredential=) wins."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        candidate = Path(creds) / path.name
        if candidate.is_file():
            return candidate
    return path


def _read_secret(path: Path, field: str, problems: list[str]) -> Secret | None:
    real = resolve_secret_path(path)
    try:
        value = real.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        problems.append(f"{field}: cannot read {real}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{field}: {real} is not UTF-8 text")
        return None
    if not value:
        problems.append(f"{field}: {real} is empty")
        return None
    return Secret(value)


def _check_file(path: Path | None, field: str, problems: list[str]) -> None:
    if path is None:
        return
    real = resolve_secret_path(path)
    try:
        with real.open("rb"):
            pass
    except OSError as exc:
        problems.append(f"{field}: cannot read {real}: {exc.strerror or exc}")


def _directory_problem(directory: Path, field: str) -> str | None:
    """Why the daemon could not put its file in `directory` (None when it can).

    The daemon (or systemd: StateDirectory=, RuntimeDirectory=) creates that one
    directory; the one above it must already exist, so a mistyped path is refused here
    rather than left to the first write.
    """
    if directory.is_dir():
        return None
    if directory.exists():
        return f"{field}: {directory} is not a directory"
    parent = directory.parent
    if not parent.is_dir():
        return (f"{field}: neither {directory} nor the directory above it, {parent}, "
                "exists (only the last level is created for the daemon)")
    return None


def _foreign_address_problem(host: str | IPv4Address | None, field: str) -> str | None:
    """Why the address `host` cannot be a local end here (None for a name, and for an
    address of this host): what the probes' source or the metrics listener would hit."""
    try:
        addr = ip_address(str(host))
    except ValueError:
        return None  # no address, or a name: resolved when used
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(addr), 0))  # binds only: nothing is sent
        except OSError as exc:
            return f"{field}: {addr} is not an address of this host ({exc.strerror or exc})"
    return None


def _lab_problem(lab: str | None) -> str | None:
    """A lab's config outside that lab's `inside` namespace would probe and dial the
    lab's addresses through this host's own routes: refused, naming the way in."""
    if lab is None:
        return None
    from .lab.topology import Topology  # only for a lab's config

    ns = Topology(lab).ns("inside")
    how = f"run it there: ip netns exec {ns} dslfailover <command> -c <this config>"
    try:
        here, inside = os.stat("/proc/self/ns/net"), os.stat(f"/run/netns/{ns}")
    except FileNotFoundError:
        return (f"lab: this config is for lab {lab}, which is not up (no namespace {ns}); "
                f"`dslfailover lab up --id {lab}` first, then {how}")
    except OSError as exc:
        return f"lab: cannot tell whether this is lab {lab}'s namespace ({exc}); {how}"
    if (here.st_dev, here.st_ino) != (inside.st_dev, inside.st_ino):
        return (f"lab: this config is for lab {lab} and aims at its addresses; this "
                f"process is not in its namespace {ns}: {how}")
    return None


def host_problems(cfg: Config) -> list[str]:
    """What this host must already have for `cfg`: directories, the group, a free socket
    path, the local addresses named, the lab's namespace for a lab's config. Checked by
    `check` and at start, not when used."""
    lab = _lab_problem(cfg.lab)
    if lab is not None:
        return [lab]   # the rest is about the lab's own paths and addresses
    problems = [p for p in (
        _directory_problem(cfg.state_dir, "state_dir"),
        _directory_problem(cfg.control.socket.parent, "control.socket"),
        None if cfg.primary.record is None
        else _directory_problem(cfg.primary.record.parent, "primary.record"),
        _foreign_address_problem(cfg.primary.source, "primary.source"),
        _foreign_address_problem(cfg.failback.source, "failback.source"),
        _foreign_address_problem(cfg.metrics.host if cfg.metrics.enabled else None,
                                 "metrics.host"),
    ) if p is not None]
    sock = cfg.control.socket
    if sock.exists() and not sock.is_socket():
        problems.append(f"control.socket: {sock} exists and is not a socket")
    record = cfg.primary.record
    if record is not None and record.exists() and not record.is_file():
        problems.append(f"primary.record: {record} exists and is not a file")
    if cfg.control.group is not None:
        try:
            grp.getgrnam(cfg.control.group)
        except KeyError:
            problems.append(f"control.group: no such group {cfg.control.group!r}")
    return problems


def load_secrets(cfg: Config) -> Secrets:
    """Read every secret and check every key file, and what `host_problems` checks; all
    problems at once, never the values."""
    problems = host_problems(cfg)
    router_pw = None
    if cfg.router.password_file is not None:
        router_pw = _read_secret(cfg.router.password_file, "router.password_file", problems)
    mqtt_pw = None
    if cfg.mqtt.enabled and cfg.mqtt.password_file is not None:
        mqtt_pw = _read_secret(cfg.mqtt.password_file, "mqtt.password_file", problems)
    if cfg.router.driver == "ssh":
        _check_file(cfg.router.key_file, "router.key_file", problems)
        _check_file(cfg.router.known_hosts, "router.known_hosts", problems)
    if cfg.backup_mx is not None:
        _check_file(cfg.backup_mx.key_file, "backup_mx.key_file", problems)
        _check_file(cfg.backup_mx.known_hosts, "backup_mx.known_hosts", problems)
    if cfg.mqtt.enabled and cfg.mqtt.tls:
        _check_file(cfg.mqtt.ca_file, "mqtt.ca_file", problems)
    urls: tuple[Secret, ...] = ()
    if cfg.notify is not None:
        urls = _read_notify_urls(cfg.notify.urls_file, problems)
    if problems:
        raise ConfigError("secrets", problems)
    return Secrets(router_password=router_pw, mqtt_password=mqtt_pw, notify_urls=urls)


def _read_notify_urls(path: Path, problems: list[str]) -> tuple[Secret, ...]:
    """The Apprise URLs of `[notify]`, one per line (# comments); each one checked by
    Apprise itself, and named by its line, never by its text (it carries tokens)."""
    text = _read_secret(path, "notify.urls_file", problems)
    if text is None:
        return ()
    from .publish.notify_urls import url_problem  # Apprise: only when [notify] is set

    urls: list[Secret] = []
    for number, line in enumerate(text.reveal().splitlines(), start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        why = url_problem(url)
        if why is not None:
            problems.append(f"notify.urls_file: {resolve_secret_path(path)} line {number}: "
                            f"{why}")
        urls.append(Secret(url))
    if not urls and not any(p.startswith("notify.") for p in problems):
        problems.append(f"notify.urls_file: {resolve_secret_path(path)} holds no URL")
    return tuple(urls)
