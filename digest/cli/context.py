"""What every command shares: settings loaded once, a lazily opened engine, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from digest.config import Settings
from digest.db.engine import make_engine, require_schema
from digest.errors import InvalidInput


@dataclass
class AppContext:
    settings: Settings
    console: Console = field(default_factory=Console)
    _engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The database engine, checked to be at the current schema."""
        if self._engine is None:
            engine = make_engine(self.settings.database.url)
            require_schema(engine)
            self._engine = engine
        return self._engine

    def raw_engine(self) -> Engine:
        """The engine without a schema check (for `digest db`)."""
        return make_engine(self.settings.database.url)


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        raise RuntimeError("the digest root command did not set up its context")
    return root.obj


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def print_table(
    console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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
