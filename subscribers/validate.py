"""Checks on values people type: slugs, email addresses, timezones, hours, locales."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

from digest.errors import InvalidInput

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
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
