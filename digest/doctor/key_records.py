"""The DKIM key records DNS publishes (RFC 6376 §3.6): looked up at `selector._domainkey.domain`
and read as receivers read them, so doctor can compare them with the keys that sign.

A record is a tag list (`v=DKIM1; k=rsa; p=...`), possibly cut into several TXT strings that
are joined without a separator; white space around tags and inside p= does not count, tags
come in any order, and a missing k= means rsa. So a record is compared by what it decodes
to (the key kind and the p= bytes), never by its text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver

from digest.settings.nameservers import parse_nameserver

LOOKUP_SECONDS = 3.0  # for one record, retries included: doctor never hangs on DNS
_EDNS_PAYLOAD = 1232  # a 4096-bit RSA record does not fit the 512 bytes of plain UDP DNS
_WSP = re.compile(r"\s+")


@dataclass(frozen=True)
class KeyRecord:
    """One DKIM key record: `kind` (k=, "rsa" when absent) and `public` (p= decoded; empty
    for a revoked key)."""

    kind: str
    public: bytes


@dataclass(frozen=True)
class Lookup:
    """What DNS holds at a name: `texts`, its TXT records (each one's strings joined), or
    `error` when the lookup itself failed (timeout, SERVFAIL, no resolver)."""

    texts: tuple[str, ...] = ()
    error: str = ""


def key_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def make_resolver(nameserver: str, lifetime: float = LOOKUP_SECONDS) -> dns.resolver.Resolver:
    """A resolver asking `nameserver` ("IP" or "IP:port"), or the system's resolvers when it
    is empty; every lookup ends within `lifetime` seconds. dns.exception.DNSException when
    the system has no resolver to ask (no nameserver in /etc/resolv.conf)."""
    if nameserver:
        resolver = dns.resolver.Resolver(configure=False)
        address, port = parse_nameserver(nameserver)
        resolver.nameservers = [address]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()  # /etc/resolv.conf
    resolver.use_edns(0, 0, _EDNS_PAYLOAD)
    resolver.timeout = resolver.lifetime = lifetime
    return resolver


def lookup_txt(resolver: dns.resolver.Resolver, name: str) -> Lookup:
    """The TXT records at `name` (none for NXDOMAIN or no TXT), or why DNS did not say."""
    try:
        answer = resolver.resolve(dns.name.from_text(name), "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return Lookup()
    except dns.resolver.LifetimeTimeout:
        return Lookup(error=f"no answer within {resolver.lifetime:g} s")
    except dns.resolver.NoNameservers:
        return Lookup(error="the DNS server failed (SERVFAIL or REFUSED)")
    except dns.exception.DNSException as exc:
        return Lookup(error=str(exc) or type(exc).__name__)
    texts = tuple(b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer)
    return Lookup(texts=texts)


def parse_key_record(text: str) -> KeyRecord:
    """`text` read as a DKIM key record; ValueError saying why it is not one (not a tag
    list, a repeated tag, v= other than DKIM1 or not first, no p=, p= not base64)."""
    tags: dict[str, str] = {}
    for part in text.strip().removesuffix(";").split(";"):  # a final ';' is allowed
        name, equals, value = part.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ValueError(f"{part.strip()!r} is not a tag=value pair")
        if name in tags:
            raise ValueError(f"the tag {name}= appears twice")
        if name == "v" and (tags or value.strip() != "DKIM1"):
            raise ValueError("v= must come first and be DKIM1")
        tags[name] = value.strip()
    if "p" not in tags:
        raise ValueError("it has no p= tag (the public key)")
    try:
        public = base64.b64decode(_WSP.sub("", tags["p"]), validate=True)
    except binascii.Error:
        raise ValueError("its p= is not base64") from None
    return KeyRecord(kind=tags.get("k", "rsa").lower(), public=public)
