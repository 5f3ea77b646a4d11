"""Backup MX assurance: verify, repair and flush a remote Postfix over SSH (DESIGN §6).

A library used by the daemon; it never imports `daemon`.
"""

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
