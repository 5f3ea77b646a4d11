"""The repair edit of a map source (pure): only the domain's entry changes.

Every other physical line, comments, order and line endings stay byte for byte. The
domain ends up with exactly one active entry: the first one is rewritten in place
(keeping how its key was spelled and separated), later duplicates are removed, and a
missing entry is appended in the file's own line ending.
"""

from __future__ import annotations

import difflib
import re

from .maps import MapSource

_KEY_SEP = re.compile(r"^(\S+)(\s+)")


def set_entry(source: MapSource, domain: str, value: str,
              keep_if: str | None = None) -> str:
    """The new text of `source` with `domain value` as the domain's one entry.

    `keep_if`: when the first entry's value already equals this (the caller decided it is
    equivalent), that line is left exactly as it is.
    """
    lines = list(source.lines)
    entries = source.find(domain)
    drop: set[int] = set()
    if entries:
        first = entries[0]
        for dup in entries[1:]:
            drop.update(range(dup.first_line, dup.last_line + 1))
        if keep_if is None or first.value != keep_if:
            head = lines[first.first_line - 1]
            ending = _ending(lines[first.last_line - 1]) or source.newline
            match = _KEY_SEP.match(head)
            key, sep = (match.group(1), match.group(2)) if match else (domain, " ")
            sep = sep.rstrip("\r\n") or _first_separator(source) or " "
            lines[first.first_line - 1] = f"{key}{sep}{value}{ending}"
            drop.update(range(first.first_line + 1, first.last_line + 1))
        out = [line for number, line in enumerate(lines, start=1) if number not in drop]
        return "".join(out)
    newline = source.newline
    if lines and not _ending(lines[-1]):
        lines[-1] += newline
    sep = _first_separator(source) or " "
    lines.append(f"{domain}{sep}{value}{newline}")
    return "".join(lines)


def _ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith("\n"):
        return "\n"
    return ""


def _first_separator(source: MapSource) -> str | None:
    for entry in source.entries:
        match = _KEY_SEP.match(source.lines[entry.first_line - 1])
        if match:
            return match.group(2).rstrip("\r\n") or None
    return None


def unified_diff(path: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"{path} (now)", tofile=f"{path} (repaired)"))
