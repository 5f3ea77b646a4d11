"""The login dialogue both emulated consoles speak, each in its own words.

Name and password prompts, the failure count and the lockout (kept in `RouterState`, so
that it spans sessions): the consoles differ only in what they write, `LoginWords`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .state import RouterState
from .terminal import Terminal


@dataclass(frozen=True, slots=True)
class LoginWords:
    refused: str          # a session opened during the lockout
    greeting: str         # before the first prompt ("" for none)
    name_prompt: str
    hidden_prompt: str    # the password prompt (its answer is not echoed)
    always_hidden: bool  # ask for a password even when none is set
    wrong: str
    locked: str           # the failure that started the lockout


async def login(term: Terminal, state: RouterState, words: LoginWords) -> bool:
    """True once the session is logged in; False when refused or the client hung up."""
    loop = asyncio.get_running_loop()
    opts = state.options
    if state.locked_out(loop.time()):
        await term.write(words.refused)
        return False
    if opts.password is None and opts.username is None:
        return True
    if words.greeting:
        await term.write(words.greeting)
    while True:
        name = None
        if opts.username is not None:
            await term.write(words.name_prompt)
            name = await term.line()
            if name is None:
                return False
        password = ""
        if opts.password is not None or words.always_hidden:
            await term.write(words.hidden_prompt)
            got = await term.line(echo=False)
            if got is None:
                return False
            password = got
            await term.write("\r\n")
        verdict = state.check_login(name, password, loop.time())
        if verdict == "ok":
            return True
        await term.write(words.wrong)
        if verdict == "locked":
            await term.write(words.locked)
            return False
