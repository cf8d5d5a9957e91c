"""dkim.nameserver: an IP address with an optional port, checked when the settings load;
a host name or a bad port is refused naming the setting."""

from __future__ import annotations

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from digest.settings.nameservers import parse_nameserver
from tests.helpers.paths import ROOT


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_addresses_with_and_without_a_port(value: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(value) == parsed
    assert load_settings(ROOT / "settings.toml", {"dkim.nameserver": value}).dkim.nameserver


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("dns.example.org", "must be an IP address"),
        ("dns.example.org:53", "must be an IP address"),
        ("192.0.2.53:0", "the port is a number from 1 to 65535"),
        ("192.0.2.53:dns", "the port is a number from 1 to 65535"),
        ("[192.0.2.53]:53", "brackets are for IPv6 addresses"),
        ("2001:db8::53:5353x", "must be an IP address"),
    ],
)
def test_anything_else_is_refused_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(
        ConfigError, match=r"dkim\.nameserver \(DIGEST_DKIM__NAMESERVER\)"
    ) as raised:
        load_settings(ROOT / "settings.toml", {"dkim.nameserver": value})
    assert problem in str(raised.value)


def test_empty_is_the_system_resolver() -> None:
    assert load_settings(ROOT / "settings.toml").dkim.nameserver == ""
