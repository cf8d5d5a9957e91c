"""Settings that name a DNS server: an IP address, with a port when it is not 53
(`192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53`, `[2001:db8::53]:5353`). A host name is
refused: finding the server would itself need DNS."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from digest.settings.fields import valid

DNS_PORT = 53
_BRACKETED = re.compile(r"\[(?P<host>[^\]]*)\](?::(?P<port>[^:]*))?")
_WHAT = "must be an IP address, with :PORT when not 53 (192.0.2.53:5353, [2001:db8::53]:5353)"


def parse_nameserver(value: str) -> tuple[str, int]:
    """(IP address, port) of `value`; ValueError saying what is wrong otherwise."""
    bracketed = _BRACKETED.fullmatch(value)
    if bracketed is not None:  # [IPv6] or [IPv6]:port
        host, port = bracketed["host"], bracketed["port"]
        if ":" not in host:
            raise ValueError(f"{value!r} {_WHAT}: brackets are for IPv6 addresses")
    elif value.count(":") == 1:  # IPv4:port (a bare IPv6 address has two colons or more)
        host, port = value.split(":")
    else:
        host, port = value, None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r} {_WHAT}") from None
    if port is None:
        return str(address), DNS_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} {_WHAT}: the port is a number from 1 to 65535")
    return str(address), int(port)


def nameserver_problem(value: str) -> str | None:
    """Why `value` cannot name a DNS server, or None."""
    try:
        parse_nameserver(value)
    except ValueError as exc:
        return str(exc)
    return None


# A DNS server when set; empty means the system's resolver (/etc/resolv.conf).
OptionalNameserver = Annotated[str, valid(nameserver_problem, optional=True)]
