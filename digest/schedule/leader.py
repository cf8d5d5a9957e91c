"""The scheduler's leader lock: one `digest scheduler` per database runs the jobs.

The same `DatabaseLock` as a list's send lock (a file lock beside the SQLite file, a
session-level advisory lock on an autocommit PostgreSQL connection), but held for days, so
the scheduler re-checks it (`held`): a leader whose database session died, or whose lock
file was removed, has lost the lock and must stop leading. Followers poll `acquire`; the
kernel (or PostgreSQL) frees the lock of a process that dies, so a follower takes over even
after `kill -9`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from digest.db.locks import DatabaseLock


class Leadership(DatabaseLock):
    """The leader lock `name` of one database; `acquire` never blocks."""

    def __init__(self, engine: Engine, name: str = "scheduler") -> None:
        super().__init__(engine, name)
