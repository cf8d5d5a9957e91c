"""What every command shares: settings loaded once, a lazily opened engine, output helpers."""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from digest.cli.terminal import cell, plain
from digest.config import Settings
from digest.db.engine import make_engine, require_schema
from digest.errors import InvalidInput

# What JSON leaves raw with ensure_ascii=False but a terminal acts on: DEL, the C1 controls
# (U+009B is a CSI), line/paragraph separators and bidi overrides/isolates. Written as \uXXXX
# escapes they stay the same JSON strings, so a program reading the output loses nothing.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass
class AppContext:
    settings: Settings
    console: Console = field(default_factory=Console)
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The database engine, checked to be at the current schema."""
        if self._engine is None:
            engine = self._open()
            require_schema(engine)
            self._engine = engine
        return self._engine

    def raw_engine(self) -> Engine:
        """The engine without a schema check (for `digest db`)."""
        return self._open()

    def _open(self) -> Engine:
        database = self.settings.database
        return make_engine(database.url, busy_timeout_seconds=database.busy_timeout_seconds)


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        raise RuntimeError("the digest root command did not set up its context")
    return root.obj


def print_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def print_table(
    console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """A table whose title and cells are shown as written (never read as Rich markup)."""
    table = Table(title=cell(title))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console.print(table)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {plain(message)}", err=True)
    return typer.Exit(code)


def refuse_overwrite(path: Path, *, force: bool, option: str, source: Path | None = None) -> None:
    """Stop before a command writes over a file that is there already (unless --force), and
    always before it writes over the file it reads."""
    if source is not None and path.resolve() == source.resolve():
        raise InvalidInput(f"{option} {path} is the file being read: choose another file")
    if not force and (path.exists() or path.is_symlink()):
        raise InvalidInput(f"{option} {path} already exists: pass --force to replace it")


def database_problem(exc: DBAPIError) -> str:
    """One line for a database that is locked, busy or unreachable: the driver's first line,
    never the statement or its parameters (they hold addresses and names)."""
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    if "locked" in reason or "busy" in reason:
        return (
            f"the database is busy ({reason}): another process holds a lock on it; try again "
            "when it is done (a SQLite command waits [database] busy_timeout_seconds)"
        )
    return f"the database is unavailable ({reason}): check [database] url and that it is running"


def progress_bar(console: Console, label: str, *, auto_refresh: bool = True) -> Progress:
    """The progress bar of a long command: shown on a terminal only, gone when done.

    `auto_refresh=False` starts no refresh thread (the bar is redrawn by `refresh()`): a
    process with other threads cannot fork its parse workers (see digest/ingest/parallel.py)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
        auto_refresh=auto_refresh,
    )


def parse_day(text: str) -> date:
    """A `--date` option: an ISO date."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--date {text!r} is not a date like 2026-11-29") from None


def parse_since(text: str) -> datetime:
    """A `--since` option: an ISO date or date-time, aware and in UTC (no offset means UTC)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise InvalidInput(
                f"--since {text!r} is not an ISO date or date-time (e.g. 2026-11-28 or "
                "2026-11-28T06:00+03:00)"
            ) from None
        parsed = datetime(day.year, day.month, day.day)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_now(text: str) -> datetime:
    """A `--now` option: an ISO time with its UTC offset (planning as if it were then)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--now {text!r} is not an ISO time like 2026-11-29T07:00+03:00"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--now {text!r} needs a UTC offset, e.g. 2026-11-29T04:00+00:00")
    return moment


def actor(by: str | None) -> str:
    """Who acts, for the audit lines: `--by`, else `cli:<login name>`."""
    if by:
        return by.strip()[:320]
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
