"""The masked record of one router session: what was sent and what was seen.

Every driver writes through a `Transcript`; secrets are masked when they are recorded,
so nothing later (logs, errors, `--transcript FILE`) can leak them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import Secret

MASK = "********"


class Masker:
    """Replaces every known secret value in a text with `MASK`."""

    def __init__(self, secrets: Iterable[Secret | None] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        values = {s.reveal() for s in secrets if s is not None and s.reveal()}
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text


class Transcript:
    """Lines of `> sent`, `< seen` and `# note`, masked on the way in."""

    def __init__(self, masker: Masker | None = None) -> None:
        self.mask = masker or Masker()
        self._lines: list[str] = []

    def sent(self, shown: str) -> None:
        self._lines.append("> " + self.mask(shown))

    def seen(self, text: str) -> None:
        text = self.mask(text).replace("\r\n", "\n").replace("\r", "\n")
        for line in text.split("\n"):
            self._lines.append("< " + line.rstrip())

    def note(self, text: str) -> None:
        self._lines.append("# " + self.mask(text))

    def text(self) -> str:
        return "\n".join(self._lines) + ("\n" if self._lines else "")
