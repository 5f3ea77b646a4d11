"""The config's building blocks: the frozen section base and the value types every
section uses (seconds, ports, hosts), one validator each."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Seconds = Annotated[float, Field(gt=0, le=86400)]
Port = Annotated[int, Field(ge=1, le=65535)]

_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


def check_host(value: str) -> str:
    """What a connect or a bind will accept: an IPv4 or IPv6 address, or a host name.

    Anything made of digits and dots only must be an IPv4 address: the resolver would
    otherwise look `999.1.2.3` up as a name (or read `1.2.3` as 1.2.0.3) at run time.
    """
    if _DIGITS_AND_DOTS.fullmatch(value):
        try:
            IPv4Address(value)
        except ValueError:
            raise ValueError("digits and dots but not an IPv4 address") from None
    elif ":" in value:
        try:
            IPv6Address(value)
        except ValueError:
            raise ValueError("not an IPv6 address (and no [brackets] here)") from None
    elif not _HOST_NAME.fullmatch(value):
        raise ValueError("not a host name (letters, digits, '-', '_' and dots) or an address")
    return value


# every host a daemon connects to or listens on: one validator for all of them
Host = Annotated[str, AfterValidator(check_host)]
