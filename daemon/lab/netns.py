"""Thin async wrappers around `ip`, `ip netns` and `nft`, the lab's only way to touch the kernel.

The lab drives iproute2 and nftables through their command-line tools rather than a
netlink library: these are the tools an admin would use to reproduce or inspect the lab
by hand, and their batch modes (`ip -batch -`, `nft -f -`) keep bring-up to a few
processes per namespace. Every call has a deadline; a failure raises `LabError` naming
the command and showing the tail of what it printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass

# Bounds one `ip`/`nft`/`sysctl` call. They return in milliseconds; a hang means a stuck
# kernel operation or a lock, and the lab must fail loudly rather than wait forever.
COMMAND_TIMEOUT = 10.0
# Bounds how long a process that got SIGTERM may take to exit before it gets SIGKILL.
KILL_GRACE = 3.0

_PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


class LabError(Exception):
    """The lab could not do something; the message names the command and its output."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class PingCount:
    """How many echo requests went out and how many replies came back."""

    sent: int
    received: int

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


def _tail(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


async def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
              timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run one command to completion; raise `LabError` if it fails (when `check`) or hangs."""
    args = tuple(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise LabError(f"{' '.join(args)}: cannot start: {exc.strerror or exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise LabError(f"{' '.join(args)}: no answer within {timeout:g}s") from None
    result = CommandResult(args, proc.returncode or 0, out.decode(errors="replace"),
                           err.decode(errors="replace"))
    if check and result.returncode != 0:
        shown = _tail(result.stderr or result.stdout) or "(no output)"
        raise LabError(f"{' '.join(args)}: exit {result.returncode}: {shown}")
    return result


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs `argv` inside namespace `ns`."""
    return ["ip", "netns", "exec", ns, *argv]


async def ip_batch(ns: str | None, lines: Sequence[str]) -> None:
    """Run `ip` commands (one per line, without the leading `ip`) in one process.

    `ip -batch` stops at the first failing line and names it on stderr, so the error
    already says which step failed.
    """
    if not lines:
        return
    argv = ["ip", "-batch", "-"] if ns is None else ["ip", "-n", ns, "-batch", "-"]
    await run(argv, stdin="\n".join(lines) + "\n")


async def nft_apply(ns: str, ruleset: str) -> None:
    """Load an nftables ruleset (atomically, as one transaction) inside `ns`."""
    await run(in_netns(ns, ["nft", "-f", "-"]), stdin=ruleset)


async def sysctl(ns: str, *settings: str) -> None:
    await run(in_netns(ns, ["sysctl", "-q", "-w", *settings]))


async def netns_list() -> list[str]:
    """Names of all network namespaces (`ip netns list` prints `name (id: N)`)."""
    result = await run(["ip", "netns", "list"])
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


async def netns_pids(ns: str) -> list[int]:
    """Processes whose network namespace is `ns`: survives our own crash, no stale pids."""
    result = await run(["ip", "netns", "pids", ns], check=False)
    return [int(tok) for tok in result.stdout.split() if tok.isdigit()]


async def netns_delete(ns: str) -> None:
    await run(["ip", "netns", "delete", ns], check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for our purposes once it is a zombie.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    return _alive(pid)


def pid_in_netns(pid: int, ns: str) -> bool:
    """Whether `pid` lives in namespace `ns`: a recorded pid may have been reused since."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return False


async def kill_all(pids: Sequence[int], *, groups: bool = False,
                   grace: float = KILL_GRACE) -> None:
    """SIGTERM every pid (or its process group), then SIGKILL what is left after `grace`."""
    if not pids:
        return

    def send(sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if groups:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)

    send(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    # These are not our children (or not only): nothing to await but polling their pids.
    while loop.time() < deadline and any(_alive(p) for p in pids):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if any(_alive(p) for p in pids):
        send(signal.SIGKILL)


def parse_ping(output: str) -> PingCount:
    """Counts from iputils `ping` output's summary line."""
    match = _PING_SUMMARY.search(output)
    if match is None:
        raise LabError(f"ping printed no summary line: {_tail(output)}")
    return PingCount(int(match.group(1)), int(match.group(2)))


async def ping(ns: str, address: str, *, count: int = 1, interval: float = 0.2,
               wait: float = 1.0) -> PingCount:
    """Ping from inside `ns`; `wait` bounds the wait for each reply."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", f"{wait:g}",
            address]
    # ping itself stops after count*interval + wait; the outer deadline only catches a hang.
    result = await run(in_netns(ns, argv), check=False,
                       timeout=count * interval + wait + COMMAND_TIMEOUT)
    if result.returncode not in (0, 1):
        raise LabError(f"ping {address} in {ns}: exit {result.returncode}: "
                       f"{_tail(result.stderr or result.stdout)}")
    return parse_ping(result.stdout)
