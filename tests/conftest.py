"""Shared fixtures: a migrated SQLite file per test, settings pointing at it, a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner, Result

from digest.cli import app
from digest.config import Settings, load_settings
from digest.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not pick up the developer's DIGEST_* variables.
    for key in list(os.environ):
        if key.startswith("DIGEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'digest.sqlite3'}"


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
