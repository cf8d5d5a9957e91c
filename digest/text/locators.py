"""Syntax checks of the URLs, host names and addresses an operator writes in the settings.

Each `*_problem` function returns None for a good value, else what is wrong with it, in
words that never repeat the value (a database URL holds a password).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
# Backends the engine is tested on, and the drivers each may name (`postgresql+psycopg`).
DATABASE_DRIVERS = {"sqlite": {"", "pysqlite"}, "postgresql": {"", "psycopg", "psycopg2"}}
DATABASE_EXAMPLE = "sqlite:///var/digest.sqlite3 or postgresql+psycopg://user@host/db"


def hostname_problem(value: str, *, ip_allowed: bool = True) -> str | None:
    """A DNS name in ASCII (punycode for IDN), or an IP address when `ip_allowed`."""
    if ip_allowed:
        try:
            ipaddress.ip_address(value)
            return None
        except ValueError:
            pass
    if not value.isascii():
        return "must be written in ASCII (punycode, xn--..., for an internationalised domain)"
    if len(value) > 253 or not _HOSTNAME.fullmatch(value):
        return "is not a host name (letters, digits and '-' in dot-separated labels)"
    return None


def address_problem(value: str) -> str | None:
    """An email address a relay accepts without SMTPUTF8 (the domain may be an IDN)."""
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"is not a usable email address: {exc}"
    return None


def web_url_problem(value: str, *, base: bool = False) -> str | None:
    """An absolute http(s) URL without credentials; a `base` URL has no query or fragment."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return "must not hold spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check (ValueError when bad)
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an absolute http:// or https:// URL"
    if not parts.hostname:
        return "must name a host (an absolute URL like https://news.example.org)"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password"
    if base and (parts.query or parts.fragment or value.endswith(("?", "#"))):
        return "must not have a query (?...) or fragment (#...): links are appended to it"
    return hostname_problem(parts.hostname.rstrip("."))


def database_url_problem(value: str) -> str | None:
    """A SQLAlchemy URL (parsed, never connected to) of a supported backend and driver."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        return f"is not a database URL like {DATABASE_EXAMPLE}"
    drivers = DATABASE_DRIVERS.get(url.get_backend_name())
    if drivers is None:
        return f"names an unsupported database: use {DATABASE_EXAMPLE}"
    driver = url.drivername.partition("+")[2]
    if driver not in drivers:
        named = ", ".join(sorted(d for d in drivers if d))
        return f"names an unsupported driver {driver!r} (supported: {named})"
    return None
