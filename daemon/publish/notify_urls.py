"""Whether Apprise can use a `[notify]` URL, told without the URL: it carries tokens.

`url_problem` asks Apprise itself (the parser and the service's own constructor, as a
send would) and names at most the URL's scheme. `scheme_of` is that one loggable part.
`quiet_apprise_logs` keeps Apprise's own log lines (some name a URL's host, which is the
token for a few services, Telegram's bot for one) out of the daemon's logs.

Apprise is imported inside the functions that need it: only when `[notify]` is set.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

# What a scheme may look like to be shown: letters, digits, + . - (RFC 3986), short.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")


def scheme_of(url: str) -> str:
    """The URL's scheme ("json", "ntfys"), lower-case; "(none)" when it has none a log
    could show (then nothing of it is shown)."""
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else "(none)"


def quiet_apprise_logs() -> None:
    """Apprise's stdlib logger ends at itself: not passed to the daemon's handlers, nor
    to logging's last-resort stderr handler. Its per-call capture (results) still works."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def instantiate(url: str) -> NotifyBase | None:
    """Apprise's service object for one URL (None when it cannot use it). One URL only:
    `Apprise.add(str)` would split a line at commas and spaces."""
    import apprise  # only when [notify] is set: it costs memory (see notify.py)

    quiet_apprise_logs()
    return apprise.Apprise.instantiate(url)


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use `url` (None when it can), naming only its scheme."""
    from apprise import NotificationManager

    if instantiate(url) is not None:
        return None
    scheme = scheme_of(url)
    if scheme == "(none)":
        return "not an Apprise URL: no scheme:// at its start (the text is not shown)"
    known = NotificationManager()  # type: ignore[no-untyped-call]  # the plugin registry
    if scheme not in known:
        return (f"{scheme}:// is no Apprise service, nor a service's own web address that "
                "Apprise knows")
    return (f"Apprise cannot use this {scheme}:// URL: a part is missing or malformed "
            "(the text is not shown: it may hold a token)")
