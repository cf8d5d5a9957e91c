"""Database: migrations from empty to head, SQLite pragmas, clear errors when not migrated."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from digest.db.engine import current_revision, head_revision, make_engine, require_schema, upgrade
from digest.errors import SchemaError


def test_fresh_sqlite_file_migrates_to_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    before, after = upgrade(engine)
    assert before is None
    assert after == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert {
        "topic",
        "mailing_list",
        "list_topic",
        "subscriber",
        "subscription",
        "subscription_topic",
        "suppression",
    } <= tables
    assert upgrade(engine) == (after, after)  # idempotent
    require_schema(engine)


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_missing_file_is_not_created_and_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(SchemaError, match="digest db upgrade"):
        require_schema(make_engine(f"sqlite:///{path}"))
    assert not path.exists()


def test_unmigrated_database_says_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    assert current_revision(engine) is None
    with pytest.raises(SchemaError, match="has no schema: run `digest db upgrade`"):
        require_schema(engine)


def test_migrations_match_the_models(tmp_path: Path) -> None:
    # Scenario: someone changes a model and forgets the migration.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import digest.db.models
    import subscribers.models  # noqa: F401

    engine = make_engine(f"sqlite:///{tmp_path / 'cmp.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert digest.db.models
