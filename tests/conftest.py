"""Shared fixtures: a migrated database per test, settings pointing at it, a CLI runner.

SQLite by default (a file per test). With DIGEST_TEST_DATABASE=postgresql every database
test runs on PostgreSQL instead: one throwaway server per session (tests/helpers/pg.py), migrated
once into `digest_template`, and a fresh `CREATE DATABASE t_N TEMPLATE ...` per test (an
empty one for tests that ask for `db_url` without `engine`: they test unmigrated databases).
Tests marked `sqlite_only` test SQLite itself (pragmas, lock files) and are skipped there.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner, Result

from digest.cli import app
from digest.config import Settings, load_settings
from digest.db.engine import make_engine, upgrade
from tests.helpers import pg

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Screenshots of the browser tests, for a person to look at.
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; never a downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Read once at import: the autouse _clean_env removes every DIGEST_* variable per test.
TEST_DATABASE = os.environ.get("DIGEST_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
ON_POSTGRES = TEST_DATABASE in {"postgresql", "postgres", "pg"}
if TEST_DATABASE not in {"sqlite", "postgresql", "postgres", "pg"}:
    raise RuntimeError(f"DIGEST_TEST_DATABASE={TEST_DATABASE!r}: use sqlite or postgresql")
TEMPLATE = "digest_template"
# Fixtures that need the migrated schema: a test asking for any of them gets a copy of the
# migrated template, others an empty database.
_MIGRATED = {"engine", "session", "cli"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: tests SQLite itself (pragmas, lock files); skipped on PostgreSQL"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="SQLite-specific (DIGEST_TEST_DATABASE=postgresql)")
    for item in items:
        if item.get_closest_marker("sqlite_only") is not None:
            item.add_marker(skip)


def missing(reason: str) -> None:
    """PostgreSQL cannot run here: skip on a developer machine, fail in CI (CI=true)."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    """One throwaway PostgreSQL server for the whole session."""
    try:
        with pg.server() as server:
            yield server
    except pg.PostgresMissing as exc:
        missing(str(exc))


def _admin(server: pg.Server, statement: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template(pg_server: pg.Server) -> str:
    """`digest_template`: migrated once per session, copied by each test."""
    _admin(pg_server, f"CREATE DATABASE {TEMPLATE}")
    engine = make_engine(pg_server.url(TEMPLATE))
    upgrade(engine)
    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without sessions
    return TEMPLATE


_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not pick up the developer's DIGEST_* variables.
    for key in list(os.environ):
        if key.startswith("DIGEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'digest.sqlite3'}"
        return
    server: pg.Server = request.getfixturevalue("pg_server")
    migrated = bool(_MIGRATED & set(request.fixturenames))
    template = request.getfixturevalue("pg_template") if migrated else "template0"
    name = f"t_{os.getpid()}_{next(_numbers)}"
    _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(db_url: str) -> Settings:
    return load_settings(ROOT / "settings.toml", {"database.url": db_url})


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database.url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


class Cli:
    """Runs `digest` in-process against the test database."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(
            app,
            [
                "--config",
                str(ROOT / "settings.toml"),
                "--set",
                f"database.url={self.db_url}",
                *args,
            ],
            input=input,
        )

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.output, result.exception)
        return result


@pytest.fixture
def cli(db_url: str, engine: Engine) -> Cli:
    return Cli(db_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by playwright, one per test module (playwright's sync API
    keeps an event loop of its own while it runs); missing: a failure in CI, a skip
    elsewhere."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
