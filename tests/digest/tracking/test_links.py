"""Click destinations: recorded once per hash, the first URL kept, with the given time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.db.models import Link
from digest.tracking.links import store_links

NOW = datetime(2026, 11, 28, 4, tzinfo=UTC)


def test_links_are_recorded_once_per_hash(engine: Engine, session: Session) -> None:
    store_links(engine, {".a1": "https://news.example.org/1"}, NOW)
    store_links(
        engine, {".a1": "https://elsewhere.example/", ".b2": "https://news.example.org/2"}, NOW
    )
    store_links(engine, {}, NOW)
    rows = {link.hash: (link.url, link.created_at) for link in session.exec(select(Link))}
    assert rows == {
        "a1": ("https://news.example.org/1", NOW),
        "b2": ("https://news.example.org/2", NOW),
    }
