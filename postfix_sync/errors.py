"""The one exception tree of postfix_sync; asyncssh and OS errors are converted at the border."""

from __future__ import annotations


class MxError(Exception):
    """Anything that went wrong with the backup MX. `step` says where, `seen` what came back."""

    def __init__(self, step: str, message: str, seen: str = "") -> None:
        self.step = step
        self.message = message
        self.seen = seen
        text = f"{step}: {message}"
        if seen:
            text += f" (seen: {seen[-300:]!r})"
        super().__init__(text)


class MxConnectError(MxError):
    """The SSH connection could not be made (refused, timeout, sshd down)."""


class MxHostKeyError(MxConnectError):
    """The host key is unknown or changed: never accepted."""


class MxAuthError(MxConnectError):
    """The key was refused."""


class MxCommandError(MxError):
    """A remote command failed or returned something we could not read."""


class MxMapError(MxError):
    """A Postfix map source could not be parsed; names the file and line."""


class MxRepairError(MxError):
    """A repair failed; the backup was restored (or the message says why not)."""
