"""Addresses on the wire: IDN domains in punycode, non-ASCII local parts only with SMTPUTF8."""

from __future__ import annotations

import functools

import idna

from digest.errors import InvalidInput


class NeedsSmtpUtf8(InvalidInput):
    """The address has a non-ASCII local part and the server does not offer SMTPUTF8."""


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain) of `address`, split at its last `@`."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise InvalidInput(f"{address!r} is not an email address (local@domain)")
    return local, domain


@functools.lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """`domain` as the DNS and SMTP know it: IDNA 2008 A-labels ("xn--bcher-kva.de").

    ASCII domains are returned as they are (lower-cased); raises InvalidInput for a domain
    that has no A-label form (a label too long, a disallowed character).
    """
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(f"domain {domain!r} cannot be written in punycode: {exc}") from None


def needs_smtputf8(address: str) -> bool:
    """The local part is not ASCII: only an SMTPUTF8 server can take the address."""
    return not split_address(address)[0].isascii()


def smtp_address(address: str, smtputf8: bool) -> str:
    """`address` as it goes into RCPT TO (and the To header): the domain in punycode; a
    non-ASCII local part kept in UTF-8 when `smtputf8` (the server offers it), else
    NeedsSmtpUtf8 with the reason, so the one delivery fails without blaming the reader."""
    local, domain = split_address(address)
    if not local.isascii() and not smtputf8:
        raise NeedsSmtpUtf8(
            f"{address!r} has a non-ASCII local part, and the SMTP server does not offer "
            "SMTPUTF8 (RFC 6531): it cannot be sent through this relay"
        )
    return f"{local}@{ascii_domain(domain)}"
