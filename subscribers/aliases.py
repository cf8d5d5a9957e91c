"""Merged subscriber ids (`subscriber_alias`): which id a link names now, and ids kept free."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from digest.db.tables import table_of
from subscribers.models import SubscriberAlias
from subscribers.tables import SUBSCRIBER

ALIAS = table_of(SubscriberAlias)


def next_free_subscriber_id(connection: Connection) -> int | None:
    """The id a new subscriber must take so it never reuses a merged id; None when the
    database's own choice is safe.

    SQLite (no AUTOINCREMENT) gives a new row the highest id + 1, so once the highest ids
    were merged away (migration 0008) a new person would take an alias's id and its links
    would act on someone else. PostgreSQL's sequences never hand an id out twice."""
    if connection.dialect.name != "sqlite":
        return None
    highest_alias = connection.execute(select(func.max(ALIAS.c.id))).scalar()
    if highest_alias is None:
        return None
    highest = connection.execute(select(func.max(SUBSCRIBER.c.id))).scalar() or 0
    return None if highest > highest_alias else int(highest_alias) + 1


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
