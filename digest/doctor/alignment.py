"""Sender domain alignment, as DMARC judges it: the From domain against the DKIM d= domain
and the Return-Path (envelope sender) domain.

DMARC passes when DKIM or SPF passes *and* its domain is aligned with From: the same
domain, or (relaxed alignment, the default) the same organisational domain. The real
organisational domain comes from the Public Suffix List; doctor uses a small rule instead,
which needs no list and is right for the common cases: the last two labels
(`news.example.org` -> `example.org`), or the last three when the second-level label is a
short generic one used under country codes (`co`, `com`, `org`, `net`, `gov`, `edu`,
`ac`: `mail.example.com.sa` -> `example.com.sa`, `news.example.co.uk` -> `example.co.uk`).
Where the rule may be wrong (other public suffixes), use the same domain everywhere.
"""

from __future__ import annotations

from digest.config import Settings
from digest.doctor.report import Check
from digest.errors import InvalidInput
from digest.send.addresses import ascii_domain

NAME = "alignment"
SHORT_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "edu", "ac"})


def organisational_domain(domain: str) -> str:
    """The registrable part of `domain`, by the rule in this module's docstring."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and labels[-2] in SHORT_SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def envelope_sender(settings: Settings) -> str:
    """The Return-Path of a digest, as its domain goes: `b-…@[inbound] domain` when a bounce
    domain is set (VERP; doctor uses `b-doctor`), else sender.from_address."""
    if settings.inbound.domain:
        return f"b-doctor@{settings.inbound.domain}"
    return settings.sender.from_address


def _domain(value: str) -> str:
    domain = value.rpartition("@")[2].rstrip(".")
    try:
        return ascii_domain(domain)
    except InvalidInput:
        return domain.lower()


def alignment_check(settings: Settings) -> Check:
    """ok when DKIM and the Return-Path both align with From; warn when one does (DMARC
    passes on the other alone); fail when neither does (DMARC fails)."""
    author = _domain(settings.sender.from_address)
    signing = _domain(settings.dkim.domain or author) if settings.dkim.private_key_path else ""
    bounce = _domain(envelope_sender(settings))
    shown = f"From {author}, DKIM d={signing or '(no DKIM)'}, Return-Path {bounce}"
    dkim_ok = bool(signing) and _aligned(signing, author)
    spf_ok = _aligned(bounce, author)
    if dkim_ok and spf_ok:
        how = "the same domain" if signing == bounce == author else "one organisational domain"
        return Check.ok(NAME, f"{shown}: {how} ({organisational_domain(author)})")
    if not dkim_ok and not spf_ok:
        return Check.fail(
            NAME,
            f"{shown}: neither DKIM nor the Return-Path aligns with From, so DMARC fails",
            "put sender.from_address, dkim.domain and inbound.domain under one domain",
        )
    if not dkim_ok:
        return Check.warn(
            NAME,
            f"{shown}: only the Return-Path aligns with From; a forwarded digest fails DMARC",
            "sign with DKIM under the From domain (dkim.domain, dkim.private_key_path)",
        )
    return Check.warn(
        NAME,
        f"{shown}: the Return-Path does not align with From (DMARC rests on DKIM alone)",
        "use a bounce domain under the From domain (inbound.domain), e.g. bounces." + author,
    )


def _aligned(domain: str, author: str) -> bool:
    return organisational_domain(domain) == organisational_domain(author)
