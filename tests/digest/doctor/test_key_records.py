"""Key records read as receivers read them (tag order, spaces, a missing k=, a final ';'
do not count; a repeated tag, v= not first or not DKIM1, no p=, p= not base64 are not
records), and looked up through a resolver that asks the dkim.nameserver setting's server."""

from __future__ import annotations

import base64

import dns.resolver
import pytest

from digest.doctor.key_records import KeyRecord, lookup_txt, make_resolver, parse_key_record
from tests.helpers.dns_server import dns_server

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"v=DKIM1; k=ed25519; p={KEY}",
        f"k=ed25519;p={KEY};",
        f" p = {KEY[:10]} {KEY[10:]} ;\tk = ed25519 ; t=y; h=sha256",
        f"v=DKIM1;k=ED25519;p={KEY}",
    ],
)
def test_the_same_key_written_in_many_ways(text: str) -> None:
    assert parse_key_record(text) == KeyRecord("ed25519", bytes(range(32)))


def test_a_missing_k_means_rsa_and_an_empty_p_a_revoked_key() -> None:
    assert parse_key_record(f"v=DKIM1; p={KEY}").kind == "rsa"
    assert parse_key_record("v=DKIM1; k=rsa; p=") == KeyRecord("rsa", b"")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("v=spf1 -all", "v= must come first and be DKIM1"),
        (f"k=rsa; v=DKIM1; p={KEY}", "v= must come first and be DKIM1"),
        ("v=DKIM1; k=rsa", "it has no p= tag"),
        (f"v=DKIM1; p={KEY}; p={KEY}", "the tag p= appears twice"),
        ("v=DKIM1; p=not*base64", "its p= is not base64"),
        ("hello world", "'hello world' is not a tag=value pair"),
        ("", "'' is not a tag=value pair"),
    ],
)
def test_what_is_not_a_key_record(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("*", r"\*")):
        parse_key_record(text)


def test_the_resolver_asks_the_configured_server_within_its_lifetime() -> None:
    resolver = make_resolver("127.0.0.1:5353", lifetime=1.5)
    assert (resolver.nameservers, resolver.port) == (["127.0.0.1"], 5353)
    assert resolver.timeout == resolver.lifetime == 1.5
    ipv6 = make_resolver("[::1]:5353")
    assert (ipv6.nameservers, ipv6.port) == (["::1"], 5353)


def test_the_system_resolver_is_the_default() -> None:
    try:
        system = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        pytest.skip("this machine has no /etc/resolv.conf nameserver")
    assert make_resolver("").nameservers == system.nameservers


def test_a_lookup_joins_each_records_strings() -> None:
    records = {"s._domainkey.example.org": [("v=DKIM1; ", "p=", KEY), ("other",)]}
    with dns_server(records) as server:
        found = lookup_txt(make_resolver(server.address), "S._domainkey.example.org")
    assert sorted(found.texts) == sorted([f"v=DKIM1; p={KEY}", "other"])
    assert found.error == ""
