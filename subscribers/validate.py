"""Checks on values people type: slugs, email addresses, timezones, hours, locales."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from zoneinfo import available_timezones

import idna
from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidInput

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A strict subset of what email-validator accepts (plain ASCII dot-atom, all-letter TLD):
# matching addresses skip the full validator, which costs ~60 µs each and bounds imports.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FAST_EMAIL = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{1,63}})")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
LOCALES = ("ar", "en")


def check_slug(slug: str, what: str = "slug") -> str:
    if not SLUG.match(slug):
        raise InvalidInput(
            f"{what} {slug!r} must be 1-64 lower-case ASCII letters, digits, '-' or '_'"
        )
    return slug


def normalize_email(raw: str, *, smtputf8: bool = False) -> str:
    """The address as it will be stored and mailed: local part kept as written (it may be
    case-sensitive), domain lower-cased; an internationalised domain in its Unicode form.

    Syntax only: no DNS look-up, so imports stay fast and offline. A non-ASCII local part
    is refused unless `smtputf8` (the relay carries SMTPUTF8 mail).
    """
    return normalize_address(raw, smtputf8=smtputf8)[0]


def normalize_address(raw: str, *, smtputf8: bool = False) -> tuple[str, str]:
    """`normalize_email` and the matching key of the address, in one pass (imports)."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidInput("email is empty")
    fast = _FAST_EMAIL.fullmatch(candidate)
    if fast is not None:
        local, domain = fast.group(1), fast.group(2).lower()
        if (
            len(local) <= 64
            and len(candidate) <= 254
            and "--" not in domain
            and domain.rsplit(".", 1)[-1] not in _SPECIAL_USE
        ):
            address = f"{local}@{domain}"
            return address, address.lower()
    local = candidate.rpartition("@")[0]
    if not smtputf8 and not local.isascii():
        raise InvalidInput(
            f"invalid email {candidate!r}: the part before '@' has non-ASCII characters, "
            "which this server does not accept; use an ASCII address "
            "(a domain in any script is fine)"
        )
    try:
        result = validate_email(candidate, check_deliverability=False, allow_smtputf8=smtputf8)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email {candidate!r}: {exc}") from None
    address = str(result.normalized)
    return address, _key(str(result.local_part), str(result.ascii_domain or result.domain))


def email_key(address: str) -> str:
    """The matching key of an address: the same for every spelling of one mailbox.

    Case-insensitive on the whole address (mailboxes that differ only in case are one person
    in practice, and sending three digests to one inbox is the harm), and one spelling of an
    internationalised domain (punycode), so `user@bücher.de` and `user@xn--bcher-kva.de` match.
    Never raises: it also keys addresses stored before these rules.
    """
    address = address.strip()
    if address.isascii():
        return address.lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return address.casefold()
    return _key(local, domain)


def _key(local: str, domain: str) -> str:
    if not domain.isascii():
        domain = _ascii_domain(domain)
    local = local.lower() if local.isascii() else unicodedata.normalize("NFC", local).casefold()
    return f"{local}@{domain.lower()}"


def _ascii_domain(domain: str) -> str:
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError:  # not a valid IDN (an address stored before these rules): as written
        return unicodedata.normalize("NFC", domain).casefold()


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    if name not in _zones():
        raise InvalidInput(f"unknown timezone {name!r}: use an IANA name such as Asia/Riyadh")
    return name


def check_hour(hour: int) -> int:
    if not 0 <= hour <= 23:
        raise InvalidInput(f"hour {hour} must be between 0 and 23")
    return hour


def parse_hour(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"hour {text!r} is not a whole number from 0 to 23") from None
    return check_hour(value)


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise InvalidInput(f"locale {locale!r} must be one of {', '.join(LOCALES)}")
    return locale
