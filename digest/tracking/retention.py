"""Housekeeping: delete raw tracking events once they are past their retention period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Column, Engine, Integer, MetaData, Table, delete, inspect, select
from sqlmodel.sql.sqltypes import UTCDateTime

# Only the columns pruning needs, so that this works whatever else the table holds.
EVENT = Table(
    "event",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime()),
)
CHUNK = 5_000


def prune_events(
    engine: Engine,
    *,
    before: datetime,
    chunk: int = CHUNK,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete events recorded before `before`; returns how many went.

    A chunk per transaction: the web app keeps writing events, and one huge DELETE would
    hold SQLite's write lock for as long as it runs. A database without the table has
    nothing to prune.
    """
    if not inspect(engine).has_table(EVENT.name):
        return 0
    removed = 0
    while not stop():
        oldest = select(EVENT.c.id).where(EVENT.c.at < before).limit(chunk)
        with engine.begin() as connection:
            count = connection.execute(delete(EVENT).where(EVENT.c.id.in_(oldest))).rowcount
        removed += count
        if count < chunk:
            break
    return removed
