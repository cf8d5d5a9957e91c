"""The `digest` app: a locked or unreachable database is one line on stderr, never a
traceback carrying the SQL and its parameters (addresses, names)."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.cli import Cli


@contextmanager
def _locked(db_url: str) -> Iterator[None]:
    """Another process's write transaction: BEGIN EXCLUSIVE held on the real file."""
    locker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@contextmanager
def _refusing_port() -> Iterator[int]:
    """A loopback port bound but never listening: connections to it are refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@pytest.mark.sqlite_only
def test_a_locked_sqlite_database_is_one_line_without_sql_parameters(cli: Cli, db_url: str) -> None:
    cli.ok("lists", "create", "daily", "--name", "النشرة اليومية")
    with _locked(db_url):
        result = cli(
            "--set", "database.busy_timeout_seconds=0.05",
            "subscribers", "add", "private.person@example.org", "--list", "daily",
            "--name", "Private Person", "--confirmed",
        )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the database is busy (database is locked)")
    assert result.stderr.count("\n") == 1
    for leak in ("private.person", "Private Person", "[SQL", "INSERT", "Traceback"):
        assert leak not in result.output
    # Nothing half-written: once the lock is gone the same command works.
    cli.ok("subscribers", "add", "private.person@example.org", "--list", "daily", "--confirmed")


def test_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with _refusing_port() as port:
        url = f"postgresql+psycopg://digest:hunter2@127.0.0.1:{port}/digest"
        result = Cli(url)("lists", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open database")
    assert result.stderr.count("\n") == 1
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_settings_errors_are_one_line(tmp_path: Path) -> None:
    result = Cli("sqlite:///" + str(tmp_path / "x.sqlite3"))(
        "--set", "database.url=mysql://root:hunter2@db/x", "lists", "list"
    )
    assert result.exit_code == 2  # bad settings: exit 2, like any bad input
    assert "database.url (DIGEST_DATABASE__URL)" in result.stderr
    assert "hunter2" not in result.output
