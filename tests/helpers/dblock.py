"""Another connection holding the database's write lock, as a long `digest` command or a
stuck process would: writers wait their timeout, then fail as "database unavailable"."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from digest.db.engine import sqlite_file


@contextmanager
def write_locked(engine: Engine, table: str = "inbound_message") -> Iterator[None]:
    """SQLite: a second connection in BEGIN IMMEDIATE (the one write lock of the file).
    PostgreSQL: a transaction holding `table` in EXCLUSIVE mode (reads go on, writes wait)."""
    path = sqlite_file(engine)
    if path is not None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.close()  # rolls the open transaction back
        return
    with engine.connect() as holder:
        holder.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            holder.rollback()
