"""Click destinations: the URL each tracked link's hash leads to, recorded once per hash."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine

from digest.db.bulk import DriverSql
from digest.db.tables import LINK


def store_links(engine: Engine, links: Mapping[str, str], now: datetime) -> None:
    """Record the click destinations of a compiled digest (suffix `.hash` -> URL); a hash
    already known keeps its first record."""
    if not links:
        return
    with engine.begin() as connection:
        sql = DriverSql(connection)
        stamp = sql.stamp(LINK.c.created_at, now)
        sql.many(
            "INSERT INTO link (hash, url, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            [(suffix.lstrip("."), url, stamp) for suffix, url in links.items()],
        )
