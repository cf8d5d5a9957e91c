"""One sender per list at a time: a file lock on SQLite, an advisory lock on PostgreSQL.

Holding the lock is what makes it safe to re-queue rows left in `sending`: whoever held it
before is gone (a killed process releases its file lock and its database session).
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from digest.db.engine import sqlite_file
from digest.errors import DigestError


class Busy(DigestError):
    """Another process holds the lock."""


def _key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2s(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold the lock `name` for this database, or raise Busy at once."""
    path = sqlite_file(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)})
            if not got.scalar():
                raise Busy(f"another process is running {name}: wait for it to finish")
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
        return
    lock_path = (path or Path("var/memory.sqlite3")).with_name(
        f"{(path or Path('memory')).name}.{name}.lock"
    )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another process is running {name} (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
