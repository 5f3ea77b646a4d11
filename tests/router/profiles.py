"""The emulator's firmware profiles and the dialogue override a user of each would write.

One table for the profile suite, the restart tests and the explore test.
"""

from __future__ import annotations

from typing import Any

DRIVER = {"menu": "netopia-menu", "cli": "netopia-cli"}

# What `[router.dialogue]` a site with this firmware needs (the shipped defaults follow
# Netopia's documents; a profile that differs is what an override is for).
OVERRIDES: dict[str, dict[str, Any]] = {
    "r9100": {},
    "r4x": {"save": {"model": "escape"}},
    "r8x-return": {"save": {"model": "return"}},
    "immediate": {"restart": {"model": "none"}},
    "relabelled": {
        "edit": {"path": [{"item": "Advanced Setup...", "title": "(?i)^advanced setup$"},
                          {"item": "WAN IP Settings...", "title": "(?i)^wan ip settings$"}],
                 "fields": {"address": "WAN IP Address", "netmask": "WAN Subnet Mask",
                            "gateway": "WAN Gateway Address"}},
        "status": {"path": [{"item": "Router Status...", "title": "(?i)^router status$"}],
                   "fields": {"address": "WAN Address", "netmask": "WAN Netmask",
                              "gateway": "Gateway"}},
        "save": {"item": "Save Settings...", "confirm_title": "(?i)^save settings$"},
        "restart": {"path": [{"item": "Maintenance...", "title": "(?i)^maintenance$"}]}},
    "socos": {},
    "socos-paged": {},
    "socos-immediate": {"commands": {"restart": ""}},
}
RESTARTS = {name: name not in ("immediate", "socos-immediate") for name in OVERRIDES}
