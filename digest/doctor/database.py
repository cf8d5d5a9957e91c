"""The database: reachable, and at the schema this version of the engine needs."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Settings
from digest.db.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    sqlite_file,
)
from digest.doctor.report import Check
from digest.errors import SchemaError
from subscribers.tables import SUBSCRIBER

NAME = "database"
UPGRADE = "run `digest db upgrade`"


def open_engine(settings: Settings) -> Engine | Check:
    """An engine for [database] url (creating no folder or file), or the failure."""
    database = settings.database
    try:
        return make_engine(
            database.url, create_dir=False, busy_timeout_seconds=database.busy_timeout_seconds
        )
    except (SQLAlchemyError, ImportError) as exc:  # a URL or driver the engine cannot use
        return Check.fail(NAME, f"cannot use [database] url: {exc}", "check database.url")


def schema_check(engine: Engine) -> Check:
    """ok at the newest migration; fail when missing, unreachable, behind or ahead."""
    where = engine.url.render_as_string(hide_password=True)
    path = sqlite_file(engine)
    if path is not None and not path.exists():
        return Check.fail(NAME, f"database file {path} does not exist", UPGRADE)
    try:
        current = current_revision(engine)
    except SchemaError as exc:
        return Check.fail(NAME, str(exc), "check database.url and that the server is running")
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", exc)).strip().splitlines() or [""])[0]
        return Check.fail(NAME, f"cannot open {where}: {reason}", "check database.url")
    head = head_revision(engine)
    if current == head:
        return Check.ok(NAME, f"{where} is at the newest schema ({head})")
    if current is None:
        return Check.fail(NAME, f"{where} has no schema", UPGRADE)
    known = {
        script.revision
        for script in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()
    }
    if current not in known:
        return Check.fail(
            NAME,
            f"{where} is at schema {current}, which this version does not know (a newer "
            "version migrated it)",
            "install the version of digest that migrated it",
        )
    return Check.fail(NAME, f"{where} is at schema {current}, this version needs {head}", UPGRADE)


def subscriber_zones(engine: Engine) -> set[str]:
    """The time zones subscribers chose (for the time zone check)."""
    with engine.connect() as connection:
        return {str(zone) for zone in connection.scalars(select(SUBSCRIBER.c.timezone).distinct())}
