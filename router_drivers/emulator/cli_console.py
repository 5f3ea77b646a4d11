"""The emulated Netopia SOC OS 7.x text CLI: login, shell, `configure` mode, `netstat`."""

from __future__ import annotations

import asyncio
from ipaddress import AddressValueError, IPv4Address, IPv4Network

from ..base import WanConfig
from .state import RouterState
from .terminal import Terminal

BANNER = ("\r\nTerminal shell v1.0\r\n"
          "Copyright (C) 2005 Netopia, Inc. (dslfailover emulator)\r\n"
          "{model} Business Class DSL router, firmware SOC OS 7.7.4\r\n"
          "(Admin completed login: Full Read/Write access)\r\n\r\n")
HELP = "Commands: configure, show, view, netstat -i, netstat -r, ping, restart, exit, quit\r\n"


def netstat_i(wan: WanConfig) -> str:
    rows = [("Interface", "Address", "Netmask", "MTU", "Status"),
            ("ethernet A", "192.168.1.1", "255.255.255.0", "1500", "up"),
            ("ethernet B", str(wan.address), str(wan.netmask), "1500", "up"),
            ("loopback", "127.0.0.1", "255.0.0.0", "4096", "up")]
    return "".join(f"{a:<15}{b:<17}{c:<18}{d:<7}{e}\r\n" for a, b, c, d, e in rows)


def netstat_r(wan: WanConfig) -> str:
    net = IPv4Network(f"{wan.address}/{wan.netmask}", strict=False)
    rows = [("Destination/Mask", "Gateway", "Port", "Type"),
            ("0.0.0.0/0.0.0.0", str(wan.gateway), "ethernet B", "Default"),
            ("127.0.0.1/255.255.255.255", "127.0.0.1", "loopback", "Host"),
            ("192.168.1.0/255.255.255.0", "192.168.1.1", "ethernet A", "Local"),
            (f"{net.network_address}/{net.netmask}", str(wan.address), "ethernet B", "Local")]
    return "IP Routing Table:\r\n" + "".join(
        f"{a:<30}{b:<17}{c:<14}{d}\r\n" for a, b, c, d in rows)


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

    async def login(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self.state.locked_until:
            await self.term.write("\r\nToo many login failures: locked out. Try later.\r\n")
            return False
        if self.opts.password is None and self.opts.username is None:
            return True
        while True:
            name = None
            if self.opts.username is not None:
                await self.term.write("\r\nlogin: ")
                name = await self.term.line()
                if name is None:
                    return False
            password = ""
            if self.opts.password is not None:
                await self.term.write("Password: ")
                got = await self.term.line(echo=False)
                if got is None:
                    return False
                password = got
                await self.term.write("\r\n")
            if name == self.opts.username and password == (self.opts.password or ""):
                self.state.failed_logins = 0
                return True
            self.state.failed_logins += 1
            await self.term.write("Login incorrect\r\n")
            if self.state.failed_logins >= self.opts.max_tries:
                self.state.locked_until = loop.time() + self.opts.lockout
                await self.term.write("Too many login failures: locked out.\r\n")
                return False

    async def shell(self, words: list[str]) -> bool:
        cmd = words[0].lower()
        if cmd in ("exit", "quit"):
            await self.term.write("Goodbye.\r\n")
            return False
        if cmd == "configure":
            self.pending = {}
            await self.term.write("Entering configuration mode.\r\n")
        elif cmd == "netstat" and words[1:] == ["-i"]:
            await self.term.write(netstat_i(self.state.saved))
        elif cmd == "netstat" and words[1:] == ["-r"]:
            await self.term.write(netstat_r(self.state.saved))
        elif cmd == "restart":
            await self.term.write("Restarting...\r\n")
            if self.state.restart is not None:
                await self.state.restart()
            return False
        elif cmd == "help" or cmd == "?":
            await self.term.write(HELP)
        else:
            await self.term.write(f"Unknown command: {' '.join(words)}\r\n")
        return True

    async def config(self, line: str, words: list[str]) -> None:
        assert self.pending is not None
        if words[0].lower() == "exit":
            if self.pending:
                await self.term.write("Configuration changes discarded.\r\n")
            self.pending = None
            return
        if words[0].lower() == "save":
            await self.save()
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
        await self.state.save(wan)
        self.pending = {}
        await self.term.write("Configuration saved.\r\n")
