"""Shared fixtures: a migrated database per test, settings pointing at it, a CLI runner.

SQLite by default (a file per test). With DIGEST_TEST_DATABASE=postgresql every database
test runs on PostgreSQL instead: one throwaway server per session (tests/helpers/pg.py), migrated
once into `digest_template`, and a fresh `CREATE DATABASE t_N TEMPLATE ...` per test (an
empty one for tests that ask for `db_url` without `engine`: they test unmigrated databases).
Tests marked `sqlite_only` test SQLite itself (pragmas, lock files) and are skipped there.
Helper code lives in tests/helpers/; this file holds only fixtures and pytest hooks.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings, load_settings
from digest.db.engine import make_engine, upgrade
from tests.helpers import pg
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from tests.helpers.ci import missing
from tests.helpers.databases import ON_POSTGRES, TEMPLATE, admin
from tests.helpers.paths import ARTIFACTS, ROOT

if TYPE_CHECKING:
    from tests.helpers.cli import Cli

# Fixtures that need the migrated schema: a test asking for any of them gets a copy of the
# migrated template, others an empty database.
_MIGRATED = {"engine", "session", "cli"}
_numbers = itertools.count(1)


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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    """One throwaway PostgreSQL server for the whole session."""
    try:
        with pg.server() as server:
            yield server
    except pg.PostgresMissing as exc:
        missing(str(exc))


@pytest.fixture(scope="session")
def pg_template(pg_server: pg.Server) -> str:
    """`digest_template`: migrated once per session, copied by each test."""
    admin(pg_server, f"CREATE DATABASE {TEMPLATE}")
    engine = make_engine(pg_server.url(TEMPLATE))
    upgrade(engine)
    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without sessions
    return TEMPLATE


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
    admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # The inbound spool in the test's own folder (on PostgreSQL it would be ./var otherwise).
    spool = str(tmp_path / "inbound-spool")
    return load_settings(
        ROOT / "settings.toml", {"database.url": db_url, "inbound.spool_dir": spool}
    )


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


@pytest.fixture
def cli(db_url: str, engine: Engine) -> Cli:
    # Imported here: the whole command line loads only for the tests that run it.
    from tests.helpers.cli import Cli

    return Cli(db_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by playwright, one per test module (playwright's sync API
    keeps an event loop of its own while it runs); missing: a failure in CI, a skip
    elsewhere."""
    reason = chromium_missing()
    if reason is not None:
        missing(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
