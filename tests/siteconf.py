"""The WAN configs every daemon-level test uses, and their TOML tables.

Addresses in 10.91/10.92: never the example config's documentation addresses, and no
traffic goes to them anyway (the dry-run driver and the emulators keep them in memory).
"""

from __future__ import annotations

from router_drivers import WanConfig

PRIMARY = WanConfig.parse("10.91.0.2", "255.255.255.248", "10.91.0.1")
BACKUP = WanConfig.parse("10.92.0.10", "255.255.255.248", "10.92.0.9")


# A test without a lab has no circuit to prove: the live proof would ping the WAN gateways
# above, which exist nowhere. Lab tests prove the circuits for real.
NO_LIVE_PROOF = "live_proof = false\n"


def wan_tables(primary: WanConfig = PRIMARY, backup: WanConfig = BACKUP, *,
               live_proof: bool = False) -> str:
    """`[router.primary]` and `[router.backup]` for a test config, placed right after the
    `[router]` keys: it begins with `live_proof = false` (see NO_LIVE_PROOF) unless asked."""
    return ("" if live_proof else NO_LIVE_PROOF) + "".join(
        f'[router.{name}]\naddress = "{w.address}"\nnetmask = "{w.netmask}"\n'
        f'gateway = "{w.gateway}"\n' for name, w in (("primary", primary), ("backup", backup)))
