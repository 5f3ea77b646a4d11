"""Reading Postfix lookup-table sources the way `postmap` reads them (pure, no I/O).

The rules, checked against postmap 3.7 (see tests/fixtures/postfix/):
- blank lines, and lines whose first non-blank character is `#`, are ignored;
- a line that starts with whitespace continues the previous logical line (appended as is,
  so `key a` + `  b` gives the value `a  b`); an indented comment does not break it;
- a logical line is `key whitespace value`; keys are lowercased; the value is stripped
  (which also drops the `\\r` of CRLF files);
- a second entry for a key is a duplicate: postmap warns and the first one wins;
- a key without a value is skipped with a warning.

Physical line numbers are kept so that a repair can rewrite one entry and leave every
other byte of the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MxMapError

# Map types whose source is a text file compiled by postmap, and the suffix of the file
# that postmap writes. texthash is read directly by Postfix: no compiled file.
COMPILED_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".db"}
FILE_TYPES = (*COMPILED_SUFFIX, "texthash")


@dataclass(frozen=True, slots=True)
class MapEntry:
    key: str        # lowercased, as postmap stores it
    value: str
    first_line: int  # 1-based physical line where the logical line starts
    last_line: int   # last physical line of it (continuations), inclusive


@dataclass(frozen=True, slots=True)
class MapSource:
    path: str
    lines: tuple[str, ...]           # physical lines with their line endings
    entries: tuple[MapEntry, ...]    # every logical line, duplicates included, file order
    warnings: tuple[str, ...]

    def find(self, key: str) -> tuple[MapEntry, ...]:
        """Every entry for exactly this key (the first one is what postmap keeps)."""
        wanted = key.lower()
        return tuple(e for e in self.entries if e.key == wanted)

    @property
    def newline(self) -> str:
        """The file's dominant line ending, used for lines a repair adds."""
        crlf = sum(1 for line in self.lines if line.endswith("\r\n"))
        lf = sum(1 for line in self.lines if line.endswith("\n")) - crlf
        return "\r\n" if crlf > lf else "\n"


@dataclass(frozen=True, slots=True)
class MapRef:
    """One `type:name` from a Postfix parameter such as transport_maps."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES and self.name.startswith("/")

    @property
    def compiled_path(self) -> str | None:
        suffix = COMPILED_SUFFIX.get(self.type)
        return self.name + suffix if suffix and self.is_file else None


def decode_source(data: bytes, path: str) -> str:
    """Map sources are text; anything else is a clear error naming the file and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MxMapError("read map", f"{path} line {line}: not UTF-8 text") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise MxMapError("read map", f"{path} line {line}: NUL byte, not a text map source")
    return text


def _is_ignored(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def parse_map(text: str, path: str) -> MapSource:
    lines = tuple(text.splitlines(keepends=True))
    warnings: list[str] = []
    logical: list[tuple[int, int, str]] = []   # (first, last, text)
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if _is_ignored(line):
            continue
        if line[0].isspace():
            if not logical:
                warnings.append(f"{path} line {number}: continuation line with nothing "
                                "before it, ignored")
                continue
            first, _, joined = logical[-1]
            logical[-1] = (first, number, joined + line)
            continue
        logical.append((number, number, line))
    entries: list[MapEntry] = []
    seen: set[str] = set()
    for first, last, joined in logical:
        parts = joined.strip().split(None, 1)
        if len(parts) < 2:
            warnings.append(f"{path} line {first}: expected format: key whitespace value, "
                            "skipped")
            continue
        key = parts[0].lower()
        if key in seen:
            warnings.append(f"{path} line {first}: duplicate entry {key!r}, "
                            "postmap keeps the first")
        seen.add(key)
        entries.append(MapEntry(key, parts[1].strip(), first, last))
    return MapSource(path, lines, tuple(entries), tuple(warnings))


def split_list(value: str) -> list[str]:
    """Postfix parameter lists: separated by commas and/or whitespace."""
    return [item for item in value.replace(",", " ").split() if item]


def parse_map_refs(value: str) -> list[MapRef]:
    """transport_maps and the like: every item is `type:name`."""
    refs = []
    for item in split_list(value):
        kind, sep, name = item.partition(":")
        if not sep or not kind or not name:
            raise MxMapError("postconf", f"{item!r} is not a type:name lookup table")
        refs.append(MapRef(kind, name))
    return refs


@dataclass(frozen=True, slots=True)
class RelayDomains:
    """relay_domains: literal domains, `type:name` tables, and `/file` pattern files."""

    literals: tuple[str, ...]
    tables: tuple[MapRef, ...]
    files: tuple[str, ...]


def parse_relay_domains(value: str) -> RelayDomains:
    literals: list[str] = []
    tables: list[MapRef] = []
    files: list[str] = []
    for item in split_list(value):
        if item.startswith("/"):
            files.append(item)
        elif ":" in item:
            kind, _, name = item.partition(":")
            tables.append(MapRef(kind, name))
        else:
            literals.append(item.lower().rstrip("."))
    return RelayDomains(tuple(literals), tuple(tables), tuple(files))


def domain_listed(domain: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """relay_domains matching (parent_domain_matches_subdomains lists relay_domains by
    default): `example.com` matches itself; `.example.com` only its subdomains."""
    domain = domain.lower()
    return any(p == domain for p in patterns if not p.startswith("!"))
