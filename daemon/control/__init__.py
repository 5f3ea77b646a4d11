"""The operator's way in: the control socket (protocol, server, client) and command parsing.

    protocol  the wire format of one request and one answer, and the errors of both sides
    server    the unix socket the daemon serves (peer credentials, mode and group)
    client    one request from the CLI, every failure a ControlError
    commands  the one schema of an operator command (MQTT and the socket), excerpts
"""

from typing import TYPE_CHECKING, Any

from .protocol import (
    ControlError,
    ControlPermissionError,
    ControlProtocolError,
    ControlSetupError,
    ControlTimeout,
    ControlUnavailable,
)

__all__ = [
    "ControlError",
    "ControlPermissionError",
    "ControlProtocolError",
    "ControlSetupError",
    "ControlTimeout",
    "ControlUnavailable",
    "request",
]


if TYPE_CHECKING:
    from .client import request


def __getattr__(name: str) -> Any:
    # the client (asyncio) only when asked for: the CLI imports the protocol's errors
    # to build its parser and exit codes
    if name == "request":
        from .client import request

        return request
    raise AttributeError(name)
