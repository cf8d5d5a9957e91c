"""Merged and erased subscriber ids: which id a link names now, and ids never handed out again."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from digest.clock import utcnow
from subscribers.tables import ALIAS, RETIRED, SUBSCRIBER


def next_free_subscriber_id(connection: Connection) -> int | None:
    """The id a new subscriber must take so it never reuses a merged or erased id; None
    when the database's own choice is safe.

    SQLite (no AUTOINCREMENT) gives a new row the highest id + 1, so once the highest ids
    were merged away (migration 0008) or erased (`people.remove`, revision 0012) a new person
    would take that id and links mailed with it would act on someone else. PostgreSQL's
    sequences never hand an id out twice."""
    if connection.dialect.name != "sqlite":
        return None
    highest = connection.execute(
        select(
            select(func.max(SUBSCRIBER.c.id)).scalar_subquery(),
            select(func.max(ALIAS.c.id)).scalar_subquery(),
            select(func.max(RETIRED.c.id)).scalar_subquery(),
        )
    ).one()
    gone = [int(i) for i in highest[1:] if i is not None]
    if not gone:
        return None
    return None if (highest[0] or 0) > max(gone) else max(gone) + 1


def retire_subscriber_ids(connection: Connection, subscriber_id: int) -> None:
    """Keep a subscriber's id and its aliases' ids out of reuse before the row is erased
    (the aliases go with it by cascade); only the ids are kept."""
    ids = [
        subscriber_id,
        *connection.execute(
            select(ALIAS.c.id).where(ALIAS.c.subscriber_id == subscriber_id)
        ).scalars(),
    ]
    known = set(connection.execute(select(RETIRED.c.id).where(RETIRED.c.id.in_(ids))).scalars())
    fresh = [{"id": i, "retired_at": utcnow()} for i in ids if i not in known]
    if fresh:
        connection.execute(RETIRED.insert(), fresh)


def current_subscriber_id(connection: Connection, subscriber_id: int) -> int:
    """The id a link's subscriber id stands for now: a live subscriber's own id always wins;
    otherwise a merged duplicate's id (links already mailed carry it) leads to the subscriber
    it was merged into."""
    live = connection.execute(
        select(SUBSCRIBER.c.id).where(SUBSCRIBER.c.id == subscriber_id)
    ).first()
    if live is not None:
        return subscriber_id
    kept = connection.execute(
        select(ALIAS.c.subscriber_id).where(ALIAS.c.id == subscriber_id)
    ).scalar()
    return subscriber_id if kept is None else int(kept)
