"""doctor's database check: a migrated, an unmigrated, a missing and an unreachable database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from digest.config import Settings
from digest.db.engine import head_revision, make_engine
from digest.doctor.database import open_engine, schema_check, subscriber_zones
from digest.doctor.report import Check
from tests.helpers.doctor import tweak


def _check(settings: Settings) -> Check:
    engine = open_engine(settings)
    assert isinstance(engine, Engine)
    try:
        return schema_check(engine)
    finally:
        engine.dispose()


def test_a_migrated_database_is_ok(settings: Settings, engine: Engine) -> None:
    check = _check(settings)
    assert check.status == "ok"
    assert str(head_revision(engine)) in check.detail


def test_an_unmigrated_database_fails_with_digest_db_upgrade(settings: Settings) -> None:
    empty = make_engine(settings.database.url)
    with empty.begin() as connection:  # the file (or PostgreSQL database) exists, no schema
        connection.execute(text("CREATE TABLE unrelated (id INTEGER)"))
    empty.dispose()
    check = _check(settings)
    assert check.status == "fail"
    assert "has no schema" in check.detail
    assert check.fix == "run `digest db upgrade`"


def test_a_database_behind_the_code_fails_with_digest_db_upgrade(
    settings: Settings, engine: Engine
) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    check = _check(settings)
    assert check.status == "fail"
    assert check.fix == "run `digest db upgrade`"


def test_a_database_ahead_of_the_code_says_which_version_to_install(
    settings: Settings, engine: Engine
) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    check = _check(settings)
    assert check.status == "fail"
    assert "does not know" in check.detail
    assert "install the version" in check.fix


@pytest.mark.sqlite_only
def test_a_missing_sqlite_file_fails_and_is_not_created(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "absent" / "digest.sqlite3"
    check = _check(tweak(settings, database={"url": f"sqlite:///{path}"}))
    assert check.status == "fail"
    assert "does not exist" in check.detail
    assert "digest db upgrade" in check.fix
    assert not path.parent.exists()


def test_an_unreachable_postgresql_server_fails(settings: Settings) -> None:
    url = "postgresql+psycopg://digest@127.0.0.1:1/digest?connect_timeout=2"
    check = _check(tweak(settings, database={"url": url}))
    assert check.status == "fail"
    assert "database.url" in check.fix


def test_subscriber_zones_are_read_for_the_time_zone_check(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscriber (email, email_key, name, locale, timezone, created_at) "
                "VALUES ('a@example.com', 'a@example.com', '', 'ar', 'Africa/Cairo', "
                "CURRENT_TIMESTAMP)"
            )
        )
    assert subscriber_zones(engine) == {"Africa/Cairo"}
