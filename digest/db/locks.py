"""Named locks, one holder per database: a file lock beside SQLite, an advisory lock on PostgreSQL.

`exclusive` guards one list's send run; the scheduler's leader lock (`digest.schedule.leader`)
is the same `DatabaseLock` held for days. Holding the send lock is what makes it safe to
re-queue rows left in `sending`: whoever held it before is gone (a killed process releases
its file lock and its database session).

On PostgreSQL the lock is session-level, taken on its own AUTOCOMMIT connection: it never
keeps a transaction open, so `idle_in_transaction_session_timeout` (common on managed
servers) cannot end the session, and the lock with it, in the middle of a run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from digest.db.engine import sqlite_file
from digest.errors import DigestError


class Busy(DigestError):
    """Another process holds the lock."""


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) of the lock `name`."""
    return int.from_bytes(
        hashlib.blake2s(name.encode(), digest_size=8).digest(), "big", signed=True
    )


class LockLost(DigestError):
    """A lock this process held is no longer its own (its database session ended, or its
    lock file was replaced): whoever takes it next may redo what this holder was doing."""


class DatabaseLock:
    """The lock `name` of one database; `acquire` never blocks."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._file: IO[str] | None = None
        self._connection: Connection | None = None
        if engine.dialect.name == "postgresql":
            self.path: Path | None = None
            self.where = f"PostgreSQL advisory lock {advisory_key(name)}"
        else:
            database = sqlite_file(engine) or Path("var/memory.sqlite3")
            self.path = database.with_name(f"{database.name}.{name}.lock")
            self.where = f"lock file {self.path}"

    @property
    def holding(self) -> bool:
        return self._file is not None or self._connection is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this process now holds it."""
        if self.holding:
            return True
        if self.path is None:
            return self._acquire_advisory()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def _acquire_advisory(self) -> bool:
        # Autocommit: the lock belongs to the session, and no transaction stays open.
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self.name)}
            ).scalar()
        except BaseException:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Still ours: the lock file is the one we locked / the database session is alive."""
        if self._file is not None:
            assert self.path is not None
            try:
                return os.fstat(self._file.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                return False
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
            except SQLAlchemyError:
                return False
            return True
        return False

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)}
                )
            except SQLAlchemyError:
                # Gone with its session, or unknown: never pool a session that may hold it.
                connection.invalidate()
            finally:
                connection.close()


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[DatabaseLock]:
    """Hold the lock `name` for this database, or raise Busy at once."""
    lock = DatabaseLock(engine, name)
    if not lock.acquire():
        raise Busy(f"another process is running {name} ({lock.where}): wait for it to finish")
    try:
        yield lock
    finally:
        lock.release()
