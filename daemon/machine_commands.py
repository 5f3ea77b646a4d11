"""The operator's rules of the machine's table (`machine.RULES`): what each command does.

Each state's row says what each command does there (`commands` below). A rule takes the
builder and what was asked; it returns None when it accepted the command, else why it
refused. Like every handler (`machine_handlers.py`), none asks which state it is in.
"""

from __future__ import annotations

from collections.abc import Callable

from .machine_builder import Builder, probe_plan
from .machine_handlers import Handler, colon
from .machine_types import Asked, Cause, Command, MxJob
from .model import Action, Circuit, EventKind, LinkHealth, State

Rule = Callable[[Builder, Asked], str | None]


def hold_now(b: Builder, asked: Asked) -> None:
    b.go(State.HELD, asked.why, Cause.OPERATOR)


def verify_now(b: Builder, _asked: Asked) -> str | None:
    if not b.ctx.cfg.mx:
        return "no backup MX configured"
    if b.ctx.mx_job is not None:
        return "an MX action is already running"
    b.mx(MxJob.VERIFY)
    return None


def failover_now(b: Builder, asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    b.apply(Circuit.BACKUP, asked.why, Cause.OPERATOR)
    return None


def failback_now(b: Builder, asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    # the monitor probes the primary now and sees it down: failing back would fail over
    # again a few rounds later
    if b.ctx.primary_link == LinkHealth.DOWN and probe_plan(b.ctx).probe and not asked.force:
        seen = b.ctx.primary_down_seen
        return (f"the monitor sees the primary circuit down{': ' + seen if seen else ''}; "
                "failback with force (dslfailover failback --force) moves anyway")
    b.set(trial=False)
    b.apply(Circuit.PRIMARY, asked.why, Cause.OPERATOR)
    return None


def not_here(b: Builder, _asked: Asked) -> str:
    if b.ctx.router_job is not None:
        return "a router action is in flight"
    return f"not possible in state {b.ctx.state.value}"


def resume_retries(b: Builder, _asked: Asked) -> str | None:
    if b.ctx.router_job is not None:
        return "not held"
    b.retry()
    return None


def resume_held(b: Builder, asked: Asked) -> str | None:
    why = asked.why
    if b.ctx.router_job is not None:
        return "a router action is still in flight; resume when it is done"
    if b.ctx.circuit == Circuit.PRIMARY:
        b.enter_primary(why, Cause.OPERATOR)
    elif b.ctx.circuit == Circuit.BACKUP:
        b.go(State.BACKUP, why, Cause.OPERATOR)
        if b.ctx.backup_since is None:
            b.enter_backup(why, Cause.OPERATOR)
    else:
        b.go(State.STARTING, why, Cause.OPERATOR)
        b.read_router()
    return None


def refuse(text: str) -> Rule:
    return lambda b, asked: text


def commands(*, hold: Rule, resume: Rule, failover: Rule, failback: Rule,
              verify: Rule) -> Handler:
    rules = {Action.HOLD: hold, Action.RESUME: resume, Action.FAILOVER: failover,
             Action.FAILBACK: failback, Action.VERIFY: verify}

    def handle(b: Builder, ev: Command) -> None:
        cmd = ev.command
        why = f"{cmd.action.value} by {cmd.source}" + colon(cmd.reason)
        refused = rules[cmd.action](b, Asked(why, cmd.force))
        b.note(EventKind.COMMAND, why + (f" — refused: {refused}" if refused else ""),
               action=cmd.action.value, source=cmd.source, accepted=refused is None)
    return handle


NOT_HELD, PAUSED = refuse("not held"), refuse("held: automation paused; resume first")

