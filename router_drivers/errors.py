"""The one exception tree of router_drivers.

Library errors (telnetlib3, asyncssh, OSError, TimeoutError) are converted where they
enter a driver; callers only ever see a `RouterError`. Every error names the step of the
dialogue it happened in and carries the (masked) tail of what the router said.
"""

from __future__ import annotations


class RouterError(Exception):
    """Anything that went wrong talking to the router. Nothing was saved unless `saved`."""

    def __init__(self, step: str, message: str, seen: str = "", *, saved: bool = False) -> None:
        self.step = step
        self.message = message
        self.seen = seen
        self.saved = saved
        text = f"{step}: {message}"
        if seen:
            tail = seen[-400:]
            text += f"\n--- last text from the router (secrets masked) ---\n{tail}"
        super().__init__(text)


class RouterConnectError(RouterError):
    """The router could not be reached (refused, unreachable, closed early)."""


class RouterAuthError(RouterError):
    """The router refused the name or password, or locked us out."""


class RouterTimeout(RouterError):
    """The router stopped answering: an expected prompt did not come in time."""


class RouterRefused(RouterError):
    """The router answered a command or field with an error; nothing was saved."""


class RouterMismatch(RouterError):
    """The read-back after an apply differs from what was asked for."""


class RouterParseError(RouterError):
    """The router's output could not be understood (unknown screen or table)."""
