"""Domain errors: each says what went wrong and what to do; the CLI and web app present them."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error a user can fix; its message is shown as is."""


class ConfigError(DigestError):
    """Settings are missing, invalid or unsafe."""


class SchemaError(DigestError):
    """The database is missing, unreachable or not migrated to the current schema."""


class NotFound(DigestError):
    """A named topic, list, subscriber or other record does not exist."""


class AlreadyExists(DigestError):
    """A record with the same unique key (slug, email, URL) already exists."""


class InvalidInput(DigestError):
    """A value given by the user is not acceptable."""


class TemplateError(DigestError):
    """An email template does not compile (Jinja2 or MJML); the message names file and line."""
