"""Time helpers: every datetime in the engine is aware and in UTC (sqlmodel's UTCDateTime)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)
