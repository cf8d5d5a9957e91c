"""Engine and session factory, schema checks and migrations (Alembic) — no globals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from digest.bundled import migrations_dir
from digest.errors import SchemaError

MIGRATIONS = migrations_dir()


def _sqlite_pragmas(busy_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
        cursor.close()

    return on_connect


def make_engine(url: str, *, create_dir: bool = True, busy_timeout_seconds: float = 30.0) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every
    connection: how long a statement waits for another process's lock before failing
    (`[database] busy_timeout_seconds`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if create_dir and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas(int(busy_timeout_seconds * 1000)))
        return engine
    # hide_parameters: a logged SQL error never carries addresses or names.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise SchemaError(f"cannot open database {_safe_url(engine)}: {exc.orig}") from None


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the database to the newest schema; returns (before, after) revisions."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def sqlite_file(engine: Engine) -> Path | None:
    """The file behind a SQLite engine (None for other engines and in-memory databases)."""
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(str(engine.url.database))


def require_schema(engine: Engine) -> None:
    """Raise a SchemaError that says to run `digest db upgrade` unless the schema is at head."""
    path = sqlite_file(engine)
    if path is not None and not path.exists():
        raise SchemaError(f"database file {path} does not exist: run `digest db upgrade` first")
    current = current_revision(engine)
    head = head_revision(engine)
    if current is None:
        raise SchemaError(
            f"database {_safe_url(engine)} has no schema: run `digest db upgrade` first"
        )
    if current != head:
        raise SchemaError(
            f"database {_safe_url(engine)} is at schema {current}, this version needs {head}: "
            "run `digest db upgrade`"
        )


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
