"""Housekeeping: raw events past their retention period are deleted, the rest stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from digest.db.models import Event
from digest.tracking.retention import prune_events

NOW = datetime(2026, 11, 29, 4, tzinfo=UTC)


def test_events_older_than_the_cutoff_are_deleted_in_chunks(
    engine: Engine, session: Session
) -> None:
    for days in (400, 200, 181, 179, 10, 0):
        session.add(Event(kind="open", at=NOW - timedelta(days=days)))
    session.commit()
    calls = 0

    def never() -> bool:
        nonlocal calls
        calls += 1
        return False

    removed = prune_events(engine, before=NOW - timedelta(days=180), chunk=2, stop=never)
    assert removed == 3
    assert calls == 2  # two full chunks, then one short one ends it (stop checked before each)
    session.expire_all()
    kept = sorted((NOW - e.at).days for e in session.exec(select(Event)))
    assert kept == [0, 10, 179]
    assert prune_events(engine, before=NOW - timedelta(days=180)) == 0


def test_stop_is_honoured_between_chunks(engine: Engine, session: Session) -> None:
    for days in range(10):
        session.add(Event(kind="click", at=NOW - timedelta(days=400 + days)))
    session.commit()
    assert prune_events(engine, before=NOW, chunk=4, stop=lambda: True) == 0
    assert prune_events(engine, before=NOW, chunk=4) == 10


def test_a_database_without_the_event_table_has_nothing_to_prune() -> None:
    bare = create_engine("sqlite://")
    assert prune_events(bare, before=NOW) == 0
