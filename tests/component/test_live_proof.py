"""The live proof after a router move: real ICMP, to loopback, or inside a namespace we
create (a subnet where 10.78.0.1 answers and 10.78.0.2 is nobody)."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Address

import pytest

from daemon.config import parse_config
from daemon.executor import Executor
from daemon.liveproof import LiveProof, ProofPlan
from daemon.machine import ApplyWan, RouterResult
from daemon.model import Circuit
from daemon.probes.icmp import choose_privileged
from daemon.wiring import proof_plans
from router_drivers import RouterSettings, create_driver
from tests.component.conftest import NetnsFactory
from tests.harness import BACKUP, PRIMARY, config_toml

A = IPv4Address


def loopback_proof(**kw: float) -> LiveProof:
    plan = ProofPlan(Circuit.BACKUP, A("127.0.0.1"), (A("127.0.0.2"), A("127.0.0.3")))
    args = {"timeout": 2.0, "echo_timeout": 0.5} | kw
    return LiveProof({Circuit.BACKUP: plan, Circuit.PRIMARY: plan},
                     privileged=choose_privileged("auto"), **args)


async def test_a_gateway_and_a_far_target_that_answer_prove_the_circuit() -> None:
    proof = await loopback_proof().prove(Circuit.BACKUP, BACKUP)
    assert proof.ok, proof.why
    assert proof.detail["gateway"] == "127.0.0.1"
    assert proof.detail["far_answered"] in ("127.0.0.2", "127.0.0.3")
    assert proof.detail["gateway_attempts"] == 1
    assert 0 < proof.seconds < 2.0


async def test_the_executor_reports_the_apply_and_the_proof_as_one_result() -> None:
    driver = create_driver("dry-run", RouterSettings(initial=PRIMARY))
    executor = Executor(driver, primary=PRIMARY, backup=BACKUP, mx=None, router_timeout=10.0,
                        mx_timeout=10.0, live_proof=loopback_proof())
    outcome = await executor.run(ApplyWan(7, Circuit.BACKUP, "test"))
    assert isinstance(outcome.event, RouterResult)
    assert outcome.event.ok and outcome.event.circuit == Circuit.BACKUP
    assert outcome.event.durations["live_proof"] > 0
    assert "gateway 127.0.0.1 answers" in outcome.summary
    assert outcome.detail["durations_s"]["live_proof"] >= 0  # rounded to ms: loopback is faster


def test_far_targets_default_to_the_primary_targets_beyond_both_wan_subnets() -> None:
    cfg = parse_config(config_toml(
        primary={"targets": [str(PRIMARY.gateway), "127.0.0.1", "127.0.0.2"]},
        router={"live_proof": None}))
    assert cfg.router.live_proof and cfg.router.live_proof_timeout == 15.0
    plans = proof_plans(cfg)
    assert plans[Circuit.BACKUP] == ProofPlan(Circuit.BACKUP, BACKUP.gateway,
                                              (A("127.0.0.1"), A("127.0.0.2")))
    assert plans[Circuit.PRIMARY].gateway == PRIMARY.gateway
    assert plans[Circuit.PRIMARY].far == plans[Circuit.BACKUP].far


@pytest.fixture
def netns(lone_subnet_netns: NetnsFactory) -> str:
    return lone_subnet_netns("10.78.0.1/24")


_PROVE = """
import asyncio, json, sys
from ipaddress import IPv4Address as A
from daemon.liveproof import LiveProof, ProofPlan
from daemon.model import Circuit
from router_drivers import WanConfig
gateway, far = sys.argv[1], sys.argv[2:]
plan = ProofPlan(Circuit.BACKUP, A(gateway), tuple(A(t) for t in far))
proof = LiveProof({Circuit.BACKUP: plan}, timeout=1.5, echo_timeout=0.3, privileged=True)
wan = WanConfig.parse("10.78.0.5", "255.255.255.0", gateway)
r = asyncio.run(proof.prove(Circuit.BACKUP, wan))
print(json.dumps({"ok": r.ok, "why": r.why, "seconds": r.seconds, "detail": dict(r.detail)}))
"""


def prove_in(ns: str, gateway: str, *far: str) -> dict[str, object]:
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _PROVE, gateway,
                          *far], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.root
def test_a_silent_gateway_fails_the_proof_naming_it_and_the_time(netns: str) -> None:
    r = prove_in(netns, "10.78.0.2", "10.78.0.1")
    assert r["ok"] is False
    why = str(r["why"])
    assert why.startswith("router reports the backup WAN (10.78.0.5/24 via 10.78.0.2) but "
                          "its gateway 10.78.0.2 did not answer ICMP from this host within "
                          "1.5s ("), why
    assert 1.4 < float(r["seconds"]) < 3.0  # type: ignore[arg-type]
    detail = r["detail"]
    assert isinstance(detail, dict) and detail["failed"] == "gateway"
    assert detail["gateway_attempts"] >= 3  # retried within the bound


@pytest.mark.root
def test_a_gateway_that_answers_with_no_far_target_answering_fails_the_proof(
        netns: str) -> None:
    r = prove_in(netns, "10.78.0.1", "10.78.0.2", "10.78.0.3")
    assert r["ok"] is False
    assert "its gateway 10.78.0.1 answers, but none of the far targets 10.78.0.2, " \
           "10.78.0.3 answered within 1.5s" in str(r["why"])
    detail = r["detail"]
    assert isinstance(detail, dict) and detail["failed"] == "far"
