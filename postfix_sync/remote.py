"""Facts about the backup MX's Postfix, gathered over one SSH link (commands + SFTP).

Ask Postfix, do not guess: `postconf -xh` names the maps, SFTP reads their sources,
`postmap -q` asks the compiled maps. Map files are written only by `write_atomic`: a temp
file beside the target, its mode copied, then an SFTP posix-rename over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex

import asyncssh

from .checks import CompiledAnswer, Facts, SourceRead, Stamp
from .errors import MxCommandError
from .maps import (
    MapRef,
    RelayDomains,
    decode_source,
    parse_map,
    parse_map_refs,
    parse_relay_domains,
)
from .ssh import SshLink, sftp_error
from .types import MxSettings

# Map sources are small text files; a bigger one is not a map we should hold in memory.
MAX_MAP_BYTES = 8 * 1024 * 1024


class Remote:
    def __init__(self, link: SshLink, settings: MxSettings) -> None:
        self.link = link
        self.s = settings

    def postfix_cmd(self, tool: str, *args: str) -> list[str]:
        """`tool` is e.g. settings.postmap ("postmap" or "sudo -n postmap"); -c DIR added."""
        argv = shlex.split(tool)
        if self.s.config_dir:
            argv += ["-c", self.s.config_dir]
        return argv + list(args)

    async def postconf(self) -> tuple[tuple[MapRef, ...], RelayDomains]:
        res = await self.link.run(
            self.postfix_cmd(self.s.postconf, "-xh", "transport_maps", "relay_domains"),
            "postconf")
        lines = res.stdout.splitlines()
        if len(lines) != 2:
            raise MxCommandError("postconf", f"expected 2 lines from {res.command!r}, "
                                 f"got {len(lines)}", seen=res.stdout + res.stderr)
        return tuple(parse_map_refs(lines[0])), parse_relay_domains(lines[1])

    async def read_text(self, path: str) -> str:
        sftp = await self.link.sftp()
        try:
            async with sftp.open(path, "rb") as f:
                data = await f.read(MAX_MAP_BYTES + 1)
        except (OSError, asyncssh.Error) as exc:
            raise sftp_error("read map", path, exc) from None
        if not isinstance(data, bytes):
            raise MxCommandError("read map", f"{path}: SFTP returned no bytes")
        if len(data) > MAX_MAP_BYTES:
            raise MxCommandError("read map", f"{path}: larger than {MAX_MAP_BYTES} bytes")
        return decode_source(data, path)

    async def read_source(self, ref: MapRef) -> SourceRead:
        if not ref.is_file:
            return SourceRead(ref, None, f"a {ref.type}: table has no text source to read")
        try:
            text = await self.read_text(ref.name)
        except MxCommandError as exc:
            return SourceRead(ref, None, exc.message)
        return SourceRead(ref, parse_map(text, ref.name))

    async def query(self, ref: MapRef) -> CompiledAnswer:
        res = await self.link.run(self.postfix_cmd(self.s.postmap, "-q", self.s.domain,
                                                   str(ref)), "postmap -q", check=False)
        # postmap -q: 0 found, 1 not found; fatal errors also exit 1 but say "fatal"
        if res.exit_status == 0:
            return CompiledAnswer(ref, res.stdout.strip())
        if res.exit_status == 1 and "fatal" not in res.stderr:
            return CompiledAnswer(ref, None)
        seen = (res.stderr or res.stdout).strip()[-300:]
        return CompiledAnswer(ref, None, f"exit {res.exit_status}: {seen}")

    async def mtime(self, path: str) -> int | None:
        sftp = await self.link.sftp()
        try:
            attrs = await sftp.stat(path)
        except asyncssh.SFTPNoSuchFile:
            return None
        except (OSError, asyncssh.Error) as exc:
            raise sftp_error("stat", path, exc) from None
        return int(attrs.mtime) if attrs.mtime is not None else None

    async def stamps(self, refs: list[MapRef]) -> tuple[Stamp, ...]:
        out = []
        for ref in dict.fromkeys(refs):     # a map may serve both parameters: once
            compiled = ref.compiled_path
            if compiled is None:
                continue
            out.append(Stamp(ref, await self.mtime(ref.name), compiled,
                             await self.mtime(compiled)))
        return tuple(out)

    async def facts(self) -> Facts:
        transport_refs, relay = await self.postconf()
        # independent reads: run them side by side as channels of the one connection
        t_reads, t_answers, r_reads, r_answers, stamps = await asyncio.gather(
            asyncio.gather(*(self.read_source(r) for r in transport_refs)),
            asyncio.gather(*(self.query(r) for r in transport_refs)),
            asyncio.gather(*(self.read_source(r) for r in relay.tables)),
            asyncio.gather(*(self.query(r) for r in relay.tables)),
            self.stamps([*transport_refs, *relay.tables]))
        return Facts(transport_refs, relay, tuple(t_reads), tuple(t_answers), tuple(r_reads),
                     tuple(r_answers), stamps)

    async def write_atomic(self, path: str, text: str, tag: str,
                           copy_mode_from: str | None = None) -> None:
        """Replace `path` by `text` in one rename; `tag` makes the temp name unique.
        The mode is copied from `copy_mode_from` (default: `path` itself)."""
        sftp = await self.link.sftp()
        temp = f"{path}.{tag}.tmp"
        try:
            mode = (await sftp.stat(copy_mode_from or path)).permissions
            async with sftp.open(temp, "wb") as f:
                await f.write(text.encode("utf-8"))
            if mode is not None:
                await sftp.chmod(temp, mode & 0o7777)
            await sftp.posix_rename(temp, path)
        except (OSError, asyncssh.Error) as exc:
            # it may never have been created; the original is untouched either way
            with contextlib.suppress(OSError, asyncssh.Error):
                await sftp.remove(temp)
            raise sftp_error("write map", path, exc) from None
