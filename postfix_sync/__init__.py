"""Backup MX assurance: verify, repair and flush a remote Postfix over SSH (DESIGN §6).

A library used by the daemon; it never imports `daemon`. `BackupMx` (client.py) does the
work in-process; `MxWorker` (worker.py) runs each action with it in a short-lived child
process, for a long-running caller (the daemon) that must not keep asyncssh's ~17 MB.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import BackupMx
from .errors import (
    MxAuthError,
    MxCommandError,
    MxConnectError,
    MxError,
    MxHostKeyError,
    MxMapError,
    MxRepairError,
)
from .types import CHECK_NAMES, Check, FlushReport, MxSettings, RepairReport, VerifyReport

__all__ = [
    "CHECK_NAMES",
    "BackupMx",
    "Check",
    "FlushReport",
    "MxAuthError",
    "MxCommandError",
    "MxConnectError",
    "MxError",
    "MxHostKeyError",
    "MxMapError",
    "MxRepairError",
    "MxSettings",
    "RepairReport",
    "VerifyReport",
]


def __getattr__(name: str) -> Any:
    # BackupMx pulls in asyncssh and cryptography (~17 MB of RSS): only when it is used
    if name == "BackupMx":
        from .client import BackupMx

        return BackupMx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
