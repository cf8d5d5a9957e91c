"""The scheduler's leader lock: one `digest scheduler` per database runs the jobs.

A file lock beside the SQLite file, a session-level advisory lock on PostgreSQL. Unlike
`digest.db.locks.exclusive` it is held for days, so it can be re-checked (`held`): a leader
whose database session died, or whose lock file was removed, has lost the lock and must
stop leading. Followers poll `acquire`; the kernel (or PostgreSQL) frees the lock of a
process that dies, so a follower takes over even after `kill -9`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from digest.db.engine import sqlite_file


def _advisory_key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2s(name.encode(), digest_size=8).digest(), "big", signed=True
    )


class Leadership:
    """The lock `name` of one database; `acquire` never blocks."""

    def __init__(self, engine: Engine, name: str = "scheduler") -> None:
        self.engine = engine
        self.name = name
        self._file: IO[str] | None = None
        self._connection: Connection | None = None
        if engine.dialect.name == "postgresql":
            self.path: Path | None = None
            self.where = f"PostgreSQL advisory lock {_advisory_key(name)}"
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
        # Autocommit: a lock held for days must not keep a transaction open.
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _advisory_key(self.name)}
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
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _advisory_key(self.name)}
                )
            except SQLAlchemyError:
                pass  # the session is gone, and its lock with it
            finally:
                connection.close()
