"""`repair`: make the domain's transport and relay entries right on the backup MX.

Order: decide from fresh facts; edit sources atomically with a timestamped backup beside
each; `postmap` what changed or is stale; `postfix reload`; verify again. Any failure after
the first write puts every backup back (and rebuilds from it) and says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .checks import Facts, SourceRead, map_checks
from .edit import set_entry, unified_diff
from .errors import MxError, MxRepairError
from .maps import MapRef
from .nexthop import compare_nexthops
from .remote import Remote
from .types import Check, RepairReport, VerifyReport


@dataclass(frozen=True, slots=True)
class Edit:
    ref: MapRef
    old: str
    new: str


def _editable(reads: tuple[SourceRead, ...], domain: str) -> SourceRead | None:
    """The table Postfix consults for the domain: the first with an entry, else the
    first readable text table."""
    readable = [r for r in reads if r.source is not None and r.ref.compiled_path]
    for read in readable:
        assert read.source is not None
        if read.source.find(domain):
            return read
    return readable[0] if readable else None


def plan_edits(facts: Facts, found: dict[str, Check], domain: str,
               nexthop: str) -> list[Edit]:
    edits: list[Edit] = []
    if not found["transport_source"].ok:
        read = _editable(facts.transport_reads, domain)
        if read is None or read.source is None:
            raise MxRepairError("plan", "transport_maps has no hash/lmdb/cdb text table to "
                                "edit; add e.g. transport_maps = hash:/etc/postfix/transport")
        entries = read.source.find(domain)
        keep = None
        if entries and compare_nexthops(nexthop, entries[0].value)[0]:
            keep = entries[0].value
        new = set_entry(read.source, domain, nexthop, keep_if=keep)
        edits.append(Edit(read.ref, "".join(read.source.lines), new))
    if not found["relay_source"].ok:
        read = _editable(facts.relay_reads, domain)
        if read is None or read.source is None:
            raise MxRepairError("plan", "relay_domains has no hash/lmdb/cdb text table to "
                                "edit; add the domain to relay_domains in main.cf")
        new = set_entry(read.source, domain, "OK")
        edits.append(Edit(read.ref, "".join(read.source.lines), new))
    return [e for e in edits if e.new != e.old]


def plan_rebuilds(facts: Facts, found: dict[str, Check], edits: list[Edit]) -> list[MapRef]:
    refs = [e.ref for e in edits]
    refs += [st.ref for st in facts.stamps if st.compiled_mtime is None
             or (st.source_mtime is not None and st.compiled_mtime < st.source_mtime)]
    if not found["transport_compiled"].ok:
        refs += [r for r in facts.transport_refs if r.compiled_path]
    if not found["relay_compiled"].ok:
        refs += [r for r in facts.relay.tables if r.compiled_path]
    return list(dict.fromkeys(refs))


async def run_repair(remote: Remote, *, verify: Callable[[], Awaitable[VerifyReport]],
                     dry_run: bool) -> RepairReport:
    """Plan from fresh facts by `map_checks`, write, rebuild; `verify` judges the result."""
    s = remote.s
    facts = await remote.facts()
    found = {c.name: c for c in map_checks(s.domain, s.nexthop, facts)}
    edits = plan_edits(facts, found, s.domain, s.nexthop)
    rebuilds = plan_rebuilds(facts, found, edits)
    diff = "".join(unified_diff(e.ref.name, e.old, e.new) for e in edits)
    steps = [f"postmap {r}" for r in rebuilds] + (["postfix reload"] if rebuilds else [])
    if dry_run:
        return RepairReport(False, diff, detail="dry run, nothing written; would run: "
                            + (", ".join(steps) or "nothing"))
    if not rebuilds:
        return RepairReport(False, "", verify=await verify(),
                            detail="the maps were already right; nothing changed")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tag = f"dslfailover-{os.getpid()}"
    backups: list[tuple[Edit, str]] = []
    try:
        for edit in edits:
            backup = await _free_name(remote, f"{edit.ref.name}.{stamp}", ".bak")
            await remote.write_atomic(backup, edit.old, tag, copy_mode_from=edit.ref.name)
            backups.append((edit, backup))
            await remote.write_atomic(edit.ref.name, edit.new, tag)
        await _rebuild(remote, rebuilds)
        after = await verify()
    except MxError as exc:
        restored = await _restore(remote, backups, rebuilds, tag)
        raise MxRepairError("repair", f"{exc}; {restored}") from None
    bad = [c for c in after.checks if not c.ok and c.name != "mail_path"]
    if bad:
        restored = await _restore(remote, backups, rebuilds, tag)
        raise MxRepairError("verify after repair", "; ".join(
            f"{c.name}: {c.detail}" for c in bad) + f"; {restored}")
    return RepairReport(True, diff, tuple(b for _, b in backups), after,
                        detail="ran: " + ", ".join(steps))


async def _free_name(remote: Remote, base: str, suffix: str) -> str:
    """A backup name not taken yet: two repairs in one second keep both originals."""
    name, n = base + suffix, 0
    while await remote.mtime(name) is not None:
        n += 1
        name = f"{base}-{n}{suffix}"
    return name


async def _rebuild(remote: Remote, refs: list[MapRef]) -> None:
    for ref in refs:
        await remote.link.run(remote.postfix_cmd(remote.s.postmap, str(ref)), "postmap")
    await remote.link.run(remote.postfix_cmd(remote.s.postfix, "reload"), "postfix reload")


async def _restore(remote: Remote, backups: list[tuple[Edit, str]], rebuilds: list[MapRef],
                   tag: str) -> str:
    """Put the old sources back and rebuild from them; say what happened."""
    if not backups:
        return "no source had been changed"
    try:
        for edit, _backup in backups:
            await remote.write_atomic(edit.ref.name, edit.old, tag)
    except MxError as exc:
        names = ", ".join(b for _, b in backups)
        return f"could NOT restore ({exc}); the backups are {names}"
    try:
        await _rebuild(remote, rebuilds)
    except MxError as exc:
        return f"restored the backups but rebuilding failed: {exc}"
    return "restored " + ", ".join(b for _, b in backups)
