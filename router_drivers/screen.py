"""The VT100 side of the dialogue engine: a pyte screen, read by label, not by offset.

`ScreenView` is a frozen snapshot of the rendered screen (text + reverse-video runs) with
pure helpers that parsers and tests use on recorded screens. `ScreenDialogue` feeds the
session's output into pyte and waits, under the step deadline, until a predicate holds on
the rendered screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pyte

from .errors import RouterError, RouterParseError, RouterTimeout
from .telnet import Channel

COLS, ROWS = 80, 24
# Once the screen looks right, how long it must stay quiet before we act on it: a console
# redraws in bursts, and a burst cut by the network can show a half-drawn label that
# looks complete. Bounded by the step deadline like every other wait.
SETTLE = 0.03
# Rows at the top that hold a banner and the title, never a menu item: a title drawn in
# reverse video there is not the highlight bar.
HEADER_ROWS = 3

# "Label:   value" on a settings screen; the label may contain spaces and brackets.
_FIELD = re.compile(r"(?P<label>[A-Za-z(][^:]*?):[ \t]+(?P<value>\S+)")
# Items on a row are separated by two or more spaces.
_SEGMENT = re.compile(r"\S+(?: \S+)*")


def norm(label: str) -> str:
    """Compare labels loosely: case, surrounding space, a trailing '...' or ':' ignored."""
    return " ".join(label.strip().rstrip(".:").strip().lower().split())


@dataclass(frozen=True, slots=True)
class Highlight:
    """The item under the cursor bar: a menu item (label) or a field (label + value)."""

    row: int
    col: int           # where the item (or the field's value) starts
    label: str
    value: str | None  # set when the highlight is a field's value
    complete: bool     # the reverse bar covers the whole item (not a half-drawn update)


@dataclass(frozen=True, slots=True)
class ScreenView:
    lines: tuple[str, ...]
    reverse: tuple[tuple[int, int, str], ...]  # (row, col, text) of each reverse-video run
    cursor: tuple[int, int] = (0, 0)           # (column, row)

    @classmethod
    def of(cls, screen: pyte.Screen) -> ScreenView:
        # not `screen.display`: pyte 0.8 raises IndexError on a wide character that was
        # half overwritten (found by fuzzing); a cell's own data is always safe to join
        lines = tuple("".join(screen.buffer[row][col].data for col in range(screen.columns))
                      for row in range(screen.lines))
        runs: list[tuple[int, int, str]] = []
        for row in range(screen.lines):
            line = screen.buffer[row]
            col = 0
            while col < screen.columns:
                if line[col].reverse:
                    start = col
                    while col < screen.columns and line[col].reverse:
                        col += 1
                    text = "".join(line[c].data for c in range(start, col))
                    if text.strip():
                        runs.append((row, start, text))
                else:
                    col += 1
        return cls(lines, tuple(runs), (screen.cursor.x, min(screen.cursor.y, screen.lines - 1)))

    @classmethod
    def render(cls, raw: str, cols: int = COLS, rows: int = ROWS) -> ScreenView:
        """Render recorded console output (escape codes and all), as a terminal would."""
        screen = pyte.Screen(cols, rows)
        pyte.Stream(screen).feed(raw)
        return cls.of(screen)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines).strip("\n")

    def compact(self) -> str:
        """The non-empty lines only: what an error message shows of a screen."""
        return "\n".join(line.rstrip() for line in self.lines if line.strip())

    def contains(self, pattern: str | re.Pattern[str]) -> bool:
        if isinstance(pattern, str):
            return pattern.lower() in self.text().lower()
        return pattern.search(self.text()) is not None

    def title(self) -> str:
        """The first non-blank line: the title, or a banner above it on some firmware."""
        for line in self.lines:
            if line.strip():
                return line.strip()
        return ""

    def headings(self, count: int = 3) -> list[str]:
        """The first `count` non-blank lines: what an error shows as the screen's title."""
        return [line.strip() for line in self.lines if line.strip()][:count]

    def titled(self, pattern: re.Pattern[str]) -> bool:
        """Some line (any row: a banner may sit above the title) matches `pattern`."""
        return any(pattern.search(line.strip()) for line in self.lines if line.strip())

    def fields(self) -> dict[str, str]:
        """Every `Label: value` on the screen, keyed by the normalised label."""
        out: dict[str, str] = {}
        for line in self.lines:
            for m in _FIELD.finditer(line):
                out.setdefault(norm(m["label"]), m["value"])
        return out

    def field(self, label: str) -> str | None:
        return self.fields().get(norm(label))

    def drawing(self) -> bool:
        """The cursor sits right after a reverse-video run: that run may be half drawn.

        Consoles park the cursor elsewhere once an update is drawn; until then (or on
        consoles that never park it) `ScreenDialogue.wait` waits for SETTLE of quiet.
        """
        x, y = self.cursor
        return any(row == y and col + len(text) == x for row, col, text in self.reverse)

    def highlight(self) -> Highlight | None:
        """The one highlighted item, or None while there is none or more than one.

        A title drawn in reverse video (some firmware does) is not a highlight.
        """
        title_row = next((i for i, line in enumerate(self.lines) if line.strip()), -1)
        runs = [r for r in self.reverse if r[0] != title_row and r[0] >= HEADER_ROWS]
        if len(runs) != 1:
            return None
        row, col, run = runs[0]
        line = self.lines[row]
        m = _FIELD.search(line)
        if m and m.start("value") <= col < m.end("value") + 1:
            complete = run.strip() == m["value"]
            return Highlight(row, m.start("value"), m["label"].strip(), m["value"], complete)
        for seg in _SEGMENT.finditer(line):
            if seg.start() <= col < seg.end():
                return Highlight(row, seg.start(), seg.group(), None,
                                 run.strip() == seg.group())
        return Highlight(row, col, run.strip(), None, False)


Predicate = Callable[[ScreenView], bool]
# Asked when the screen went quiet without matching: why to stop waiting, or None.
GiveUp = Callable[[ScreenView], str | None]


def moved_from(row: int, label: str) -> Predicate:
    """The highlight bar settled on another item than `label` on `row`.

    Compared by row and label, not by column: while the old bar is being overwritten, a
    leftover end of it ("...248" -> "8") is a reverse run at another column of the same
    item, and must not count as a move.
    """
    def pred(view: ScreenView) -> bool:
        hl = view.highlight()
        return (hl is not None and hl.complete
                and (hl.row, norm(hl.label)) != (row, norm(label)))
    return pred


class ScreenDialogue:
    """Waits for the rendered screen, not for bytes: fragments and redraws do not matter."""

    def __init__(self, session: Channel) -> None:
        self.session = session
        self._screen = pyte.Screen(COLS, ROWS)
        self._stream = pyte.Stream(self._screen)
        self._shown: tuple[str, ...] = ()
        self._shown_highlight: Highlight | None = None

    def view(self) -> ScreenView:
        return ScreenView.of(self._screen)

    async def wait(self, step: str, predicate: Predicate, timeout: float | None = None,
                   *, check_now: bool = True, expecting: str = "",
                   give_up: GiveUp | None = None, quiet: float = 1.0) -> ScreenView:
        """Wait until `predicate` holds on the rendered screen, within `timeout`.

        `expecting` says what was awaited, for the timeout's message. `give_up` is asked
        whenever the screen has been quiet for `quiet` seconds without matching: a text
        it returns ends the wait at once as a `RouterParseError` (an unexpected screen,
        a menu bar that did not move), instead of waiting out the whole timeout.
        """
        waited = self.session.step_timeout if timeout is None else timeout
        deadline = self.session.deadline(waited)
        view = self.view()
        matched = check_now and predicate(view)
        while True:
            try:
                if matched and not view.drawing():
                    self._record(view)
                    return view
                if matched:
                    # it looks right: accept it unless more output comes within SETTLE
                    settle = min(deadline, self.session.deadline(SETTLE))
                    try:
                        chunk = await self.session.next_chunk(step, settle, SETTLE)
                    except RouterTimeout:
                        self._record(view)
                        return view
                elif give_up is not None:
                    until = min(deadline, self.session.deadline(quiet))
                    try:
                        chunk = await self.session.next_chunk(step, until, waited)
                    except RouterTimeout:
                        if until >= deadline:
                            raise
                        why = give_up(view)
                        if why is None:
                            continue
                        self._record(view)
                        raise RouterParseError(step, why, self.session.transcript.mask(
                            view.compact())) from None
                else:
                    chunk = await self.session.next_chunk(step, deadline, waited)
            except RouterParseError:
                raise
            except RouterTimeout as exc:
                view = self.view()
                self._record(view)
                message = (f"the router stopped answering: no {expecting} within {waited:g}s"
                           if expecting else exc.message)
                raise RouterTimeout(exc.step, message, self.session.transcript.mask(
                    view.compact()), saved=exc.saved) from exc
            except RouterError as exc:
                # show the screen as a person would see it, not the escape codes
                view = self.view()
                self._record(view)
                raise type(exc)(exc.step, exc.message, self.session.transcript.mask(
                    view.compact()), saved=exc.saved) from exc
            self._stream.feed(chunk)
            view = self.view()
            matched = predicate(view)

    def _record(self, view: ScreenView) -> None:
        """Put what changed on the screen since the last record into the transcript."""
        lines = tuple(line.rstrip() for line in view.lines)
        hl = view.highlight()
        if lines == self._shown and hl == self._shown_highlight:
            return
        changed = [f"{i + 1:2}| {line}" for i, line in enumerate(lines)
                   if (i >= len(self._shown) or self._shown[i] != line) and line.strip()]
        if hl is not None and hl != self._shown_highlight:
            changed.append(f"  [highlighted: {hl.label}{'' if hl.value is None else ' = '}"
                           f"{hl.value or ''}]")
        self._shown, self._shown_highlight = lines, hl
        if changed:
            self.session.transcript.seen("\n".join(changed))
