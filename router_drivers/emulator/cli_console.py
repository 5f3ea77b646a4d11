"""The emulated Netopia SOC OS 7.x text CLI: login, shell, `configure` mode, `netstat`.

As on the real units (DESIGN §5): `save` stores the config, `restart` runs it (it drops
the session; the router is away for `restart_delay`). `netstat -i` is the two-line
listing of a public SOC OS 7.4 dump and shows what runs; `view ip` in config mode shows
what is saved. Options add paging (`--More--`) and "Are you sure (y/n)?" questions.
"""

from __future__ import annotations

from ipaddress import AddressValueError, IPv4Address, IPv4Network

from ..base import WanConfig
from .login import LoginWords, login
from .state import RouterState
from .terminal import Terminal

BANNER = ("\r\nTerminal shell v1.0\r\n"
          "Copyright (C) 2005 Netopia, Inc. (dslfailover emulator)\r\n"
          "{model} Business Class DSL router, firmware SOC OS 7.7.4\r\n"
          "(Admin completed login: Full Read/Write access)\r\n\r\n")
HELP = ("Commands:\r\n  configure   enter configuration mode\r\n  show        show status\r\n"
        "  view        view the configuration\r\n  netstat     show IP information "
        "(-i interfaces, -r routes)\r\n  ping        ping a host\r\n"
        "  restart     restart the router\r\n  exit, quit  leave the shell\r\n")
CONFIG_HELP = ("Configuration commands: set, view, save, exit\r\n"
               "  set ip ethernet B address|netmask ADDR, set ip gateway ADDR\r\n")
MORE = "--More--"
CONFIRM = "Are you sure (y/n)? "


def netstat_i(wan: WanConfig) -> str:
    def two(name: str, flags: str, address: str, mask: str) -> str:
        return f"{name}: ( {flags} )\r\n        inet {address} netmask {mask}\r\n"
    return (two("Ethernet A", "up broadcast multicast", "192.168.1.1", "255.255.255.0")
            + two("Ethernet B", "up broadcast multicast", str(wan.address), str(wan.netmask))
            + two("loopback", "up loopback", "127.0.0.1", "255.0.0.0"))


def netstat_r(wan: WanConfig) -> str:
    net = IPv4Network(f"{wan.address}/{wan.netmask}", strict=False)
    rows = [("Destination/Mask", "Gateway", "Port", "Type"),
            ("0.0.0.0/0.0.0.0", str(wan.gateway), "ethernet B", "Default"),
            ("127.0.0.1/255.255.255.255", "127.0.0.1", "loopback", "Host"),
            ("192.168.1.0/255.255.255.0", "192.168.1.1", "ethernet A", "Local"),
            (f"{net.network_address}/{net.netmask}", str(wan.address), "ethernet B", "Local")]
    return "IP Routing Table:\r\n" + "".join(
        f"{a:<30}{b:<17}{c:<14}{d}\r\n" for a, b, c, d in rows)


def view_ip(values: dict[str, str]) -> str:
    return ("ip\r\n  ethernet B\r\n"
            f"    address {values['address']}\r\n    netmask {values['netmask']}\r\n"
            f"  gateway {values['gateway']}\r\n")


LOGIN = LoginWords(
    refused="\r\nToo many login failures: locked out. Try later.\r\n", greeting="",
    name_prompt="\r\nlogin: ", hidden_prompt="Password: ", always_hidden=False,
    wrong="Login incorrect\r\n", locked="Too many login failures: locked out.\r\n")


class CliConsole:
    def __init__(self, state: RouterState, term: Terminal) -> None:
        self.state = state
        self.opts = state.options
        self.term = term
        self.pending: dict[str, str] | None = None  # config mode: unsaved values

    @property
    def prompt(self) -> str:
        base = f"{self.opts.model}/{self.opts.serial}"
        return f"{base} (top)>> " if self.pending is not None else f"{base}> "

    async def run(self) -> None:
        if not await self.login():
            return
        await self.term.write(BANNER.format(model=self.opts.model))
        if self.opts.hang_at == "login":
            await self.term.hang()
        await self.idle_drop("login")
        while True:
            await self.term.write(self.prompt)
            line = await self.term.line()
            if line is None:
                return
            words = line.split()
            if not words:
                continue
            self.state.received.append(line.strip())
            if self.pending is None:
                if not await self.shell(words):
                    return
            else:
                await self.config(line.strip(), words)

    async def idle_drop(self, point: str) -> None:
        if self.state.idle_drop(point):  # type: ignore[arg-type]
            await self.term.write("\r\nIdle timeout: closing the session.\r\n")
            raise EOFError

    async def page(self, text: str) -> None:
        """Write `text`, stopping at `--More--` every `page_lines` lines when paging."""
        size = self.opts.page_lines
        lines = text.split("\r\n")
        if size is None or len(lines) <= size + 1:
            await self.term.write(text)
            return
        for start in range(0, len(lines), size):
            chunk = "\r\n".join(lines[start:start + size])
            last = start + size >= len(lines)
            await self.term.write(chunk + ("" if last else "\r\n"))
            if not last:
                await self.term.write(MORE)
                key = await self.term.char()
                await self.term.write("\r" + " " * len(MORE) + "\r")
                if key in ("", "q"):
                    await self.term.write("\r\n")
                    return

    async def confirmed(self) -> bool:
        if not self.opts.confirm:
            return True
        await self.term.write(CONFIRM)
        answer = await self.term.line()
        return (answer or "").strip().lower() in ("y", "yes")

    async def login(self) -> bool:
        return await login(self.term, self.state, LOGIN)

    async def shell(self, words: list[str]) -> bool:
        cmd = words[0].lower()
        if cmd in ("exit", "quit"):
            await self.term.write("Goodbye.\r\n")
            return False
        if cmd == "configure":
            self.pending = {}
            await self.term.write("Entering configuration mode.\r\n")
        elif cmd == "netstat" and words[1:] == ["-i"]:
            await self.page(netstat_i(self.state.runs))
        elif cmd == "netstat" and words[1:] == ["-r"]:
            await self.page(netstat_r(self.state.runs))
        elif cmd == "restart":
            if not await self.confirmed():
                await self.term.write("Restart cancelled.\r\n")
                return True
            await self.term.write("Restarting...\r\n")
            if self.state.restart is not None:
                await self.state.restart()
            return False
        elif cmd in ("help", "?"):
            await self.page(HELP)
        elif cmd == "show" and len(words) == 1:
            await self.term.write("show what? (ip, status, version)\r\n")
        elif cmd == "show" and words[1:2] == ["version"]:
            await self.term.write("SOC OS 7.7.4 (dslfailover emulator)\r\n")
        else:
            await self.term.write(f"Unknown command: {' '.join(words)}\r\n")
        return True

    async def config(self, line: str, words: list[str]) -> None:
        assert self.pending is not None
        head = words[0].lower()
        if head == "exit":
            if self.pending:
                await self.term.write("Configuration changes discarded.\r\n")
            self.pending = None
            return
        if head == "save":
            await self.save()
            return
        if head == "view" and [w.lower() for w in words[1:]] in ([], ["ip"]):
            await self.page(view_ip({**self.state.saved.as_dict(), **self.pending}))
            return
        if head in ("help", "?"):
            await self.term.write(CONFIG_HELP)
            return
        for key, command in self.opts.set_commands.items():
            prefix = command.lower().split()
            if [w.lower() for w in words[:-1]] == prefix and len(words) == len(prefix) + 1:
                await self.set(key, words[-1])
                return
        await self.term.write(f"Error: unknown command \"{line}\"\r\n")

    async def set(self, key: str, value: str) -> None:
        assert self.pending is not None
        try:
            IPv4Address(value)
        except AddressValueError:
            await self.term.write(f"Error: invalid IP address \"{value}\"\r\n")
            return
        if key in self.opts.refuse:
            await self.term.write(f"Error: value {value} not permitted here\r\n")
            return
        self.pending[key] = value
        if self.opts.hang_at == "set":
            await self.term.hang()
        await self.idle_drop("set")

    async def save(self) -> None:
        assert self.pending is not None
        if self.opts.hang_at == "save":
            await self.term.hang()
        values = {**self.state.saved.as_dict(), **self.pending}
        wan = WanConfig.parse(**values)
        try:
            net = IPv4Network(f"{wan.address}/{wan.netmask}", strict=False)
        except ValueError:
            await self.term.write(f"Error: invalid netmask {wan.netmask}\r\n")
            return
        if wan.gateway not in net or wan.gateway == wan.address:
            await self.term.write(
                f"Error: gateway {wan.gateway} is not on the ethernet B subnet {net}\r\n")
            return
        if not await self.confirmed():
            await self.term.write("Save cancelled.\r\n")
            return
        await self.state.save(wan)
        self.pending = {}
        await self.term.write("Configuration saved. Restart the router to use it.\r\n"
                              if self.opts.restart_to_apply else "Configuration saved.\r\n")
