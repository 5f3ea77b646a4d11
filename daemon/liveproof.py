"""Live proof: after the router moved, the new circuit really carries traffic.

A router that reports the new WAN address proves only that it saved (and, after a
restart, runs) the config; it may still not route: a modem that is not in sync, an ISP
that has not provisioned the line, a gateway that is on another subnet. So, after a
successful apply and before the MX checks and `backup` (or `primary`):

1. the new circuit's gateway (`router.backup.gateway` / `router.primary.gateway`) answers
   ICMP echo from this host, through the router (no source address: the default route,
   which is the router);
2. then at least one far target answers: `router.live_proof_targets`, by default the
   primary's targets that are on neither WAN subnet (the first of `primary.targets` is
   the primary's DSL gateway, which the backup cannot reach by design).

Both steps retry within one bound, `router.live_proof_timeout`; each echo waits
`primary.timeout`. ICMP goes through `probes.icmp` (one home for ICMP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from router_drivers import WanConfig

from .model import Circuit

if TYPE_CHECKING:
    from .probes.icmp import EchoResult

# asyncio and the ICMP probe are imported by the proof itself: the plans (`far_targets`,
# `ProofPlan`) are also what `dslfailover check` prints, which must stay quick.

# Least time between the starts of two attempts: an echo that fails at once ("network
# unreachable" while the router's WAN is still coming up) is not retried in a busy loop.
ATTEMPT_SPACING = 0.2


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """What proves one circuit: its gateway, then any one of the far targets."""

    circuit: Circuit
    gateway: IPv4Address
    far: tuple[IPv4Address, ...]


@dataclass(frozen=True, slots=True)
class ProofResult:
    ok: bool
    seconds: float
    why: str = ""                                  # what failed, in words, when not ok
    detail: Mapping[str, Any] = field(default_factory=dict)


def far_targets(targets: Sequence[IPv4Address], *subnets: IPv4Network) -> tuple[IPv4Address, ...]:
    """The targets on none of `subnets` (the WAN subnets): they lie beyond either ISP."""
    return tuple(t for t in targets if not any(t in net for net in subnets))


class LiveProof:
    def __init__(self, plans: Mapping[Circuit, ProofPlan], *, timeout: float,
                 echo_timeout: float, privileged: bool) -> None:
        self.plans = dict(plans)
        self.timeout = timeout            # bounds the whole proof: gateway, then far targets
        self.echo_timeout = echo_timeout  # bounds the wait for one echo reply
        self.privileged = privileged

    async def prove(self, circuit: Circuit, wan: WanConfig) -> ProofResult:
        """Prove `circuit` (on which the router now reports `wan`); never raises on no reply."""
        import asyncio

        plan = self.plans[circuit]
        loop = asyncio.get_running_loop()
        started = loop.time()
        tried: dict[str, Any] = {"gateway": str(plan.gateway), "far": [str(t) for t in plan.far],
                                 "gateway_attempts": 0, "far_attempts": 0}
        phase = "gateway"
        last: tuple[EchoResult, ...] = ()
        try:
            async with asyncio.timeout(self.timeout):
                last = (await self._until_any([plan.gateway], tried, "gateway_attempts"),)
                tried["gateway_s"] = round(loop.time() - started, 3)
                tried["gateway_rtt_ms"] = last[0].rtt_ms
                phase = "far"
                if plan.far:
                    reply = await self._until_any(list(plan.far), tried, "far_attempts")
                    tried["far_answered"] = reply.target
                    tried["far_rtt_ms"] = reply.rtt_ms
                else:
                    tried["far_answered"] = None  # none configured: the gateway is the proof
        except TimeoutError:
            seconds = loop.time() - started
            errors = sorted({r.error for r in tried.pop("_last", ()) if r.error})
            seen = f" (last: {'; '.join(errors)})" if errors else ""
            what = circuit.value
            if phase == "gateway":
                why = (f"router reports the {what} WAN ({wan}) but its gateway {plan.gateway} "
                       f"did not answer ICMP from this host within {self.timeout:g}s "
                       f"({tried['gateway_attempts']} echo requests){seen}")
            else:
                why = (f"router reports the {what} WAN ({wan}) and its gateway "
                       f"{plan.gateway} answers, but none of the far targets "
                       f"{', '.join(map(str, plan.far))} answered within {self.timeout:g}s "
                       f"({tried['far_attempts']} rounds){seen}")
            return ProofResult(False, seconds, why, {**tried, "failed": phase})
        tried.pop("_last", None)
        return ProofResult(True, loop.time() - started, "", tried)

    async def _until_any(self, targets: list[IPv4Address], tried: dict[str, Any],
                         counter: str) -> EchoResult:
        """Echo all `targets` at once, round after round, until one answers (the caller's
        timeout ends it)."""
        import asyncio

        from .probes.icmp import echo, echo_all

        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            tried[counter] += 1
            if len(targets) == 1:
                replies: tuple[EchoResult, ...] = (await echo(
                    targets[0], timeout=self.echo_timeout, privileged=self.privileged),)
            else:
                replies = await echo_all(targets, timeout=self.echo_timeout,
                                         privileged=self.privileged)
            tried["_last"] = replies
            for reply in replies:
                if reply.ok:
                    return reply
            await asyncio.sleep(max(0.0, ATTEMPT_SPACING - (loop.time() - began)))
