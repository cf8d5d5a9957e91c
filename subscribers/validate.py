"""Checks on values people type: slugs, email addresses, timezones, hours, locales."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

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


def normalize_email(raw: str) -> str:
    """The address with its domain lower-cased (the local part is kept: it may be case-sensitive).

    Syntax only: no DNS look-up, so imports stay fast and offline.
    """
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
            return f"{local}@{domain}"
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"invalid email {candidate!r}: {exc}") from None
    return str(result.normalized)


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
