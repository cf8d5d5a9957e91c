"""Helpers every command shares."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from digest.cli.context import parse_since, progress_bar
from digest.errors import InvalidInput
from tests.helpers.cli import Cli


def test_a_bar_without_auto_refresh_starts_no_thread() -> None:
    # `digest ingest` forks parse workers only while it is the process's one thread.
    console = Console(file=io.StringIO(), force_terminal=True)
    before = threading.active_count()
    with progress_bar(console, "feeds", auto_refresh=False) as bar:
        bar.add_task("ingest", total=None)
        assert threading.active_count() == before
    with progress_bar(console, "sending") as bar:
        assert threading.active_count() == before + 1
    assert "feeds" in console.file.getvalue()  # type: ignore[attr-defined]


def test_no_bar_off_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_bar(console, "sending") as bar:
        bar.add_task("send", total=3)
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_commands_never_write_over_an_existing_file_without_force(cli: Cli, tmp_path: Path) -> None:
    cli.ok("topics", "add", "economy", "--name", "اقتصاد")
    cli.ok("lists", "create", "daily", "--name", "النشرة اليومية")
    mine = tmp_path / "accounts.csv"
    mine.write_text("the user's own file", encoding="utf-8")
    people = tmp_path / "people.csv"
    people.write_text("email,name\nreem@example.org,Reem\nbroken,x\n", encoding="utf-8")
    refused = (
        ("subscribers", "export", "--list", "daily", "-o", str(mine)),
        ("preview", "--list", "daily", "--topics", "economy", "-o", str(mine)),
        ("subscribers", "import", str(people), "--list", "daily", "--rejects", str(mine)),
    )
    for command in refused:
        result = cli(*command)
        assert result.exit_code == 1, command
        assert "already exists: pass --force to replace it" in result.stderr
        assert result.stderr.count("\n") == 1
        assert mine.read_text(encoding="utf-8") == "the user's own file"
    # Nothing was imported by the refused import: the check comes before any row.
    assert "reem@example.org" not in cli.ok("subscribers", "export", "--list", "daily").stdout
    # The rejects file is never the file being read, even with --force.
    same = cli("subscribers", "import", str(people), "--list", "daily", "--rejects", str(people))
    assert same.exit_code == 1 and "is the file being read" in same.stderr
    assert "broken,x" in people.read_text(encoding="utf-8")
    for command in refused:
        cli(*command, "--force")
    assert mine.read_text(encoding="utf-8") != "the user's own file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC)),
        ("2026-11-28T06:30", datetime(2026, 11, 28, 6, 30, tzinfo=UTC)),
        ("2026-11-28T06:30+03:00", datetime(2026, 11, 28, 3, 30, tzinfo=UTC)),
        ("2026-11-28T06:30:00Z", datetime(2026, 11, 28, 6, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected


def test_parse_since_refuses_what_is_not_iso() -> None:
    with pytest.raises(InvalidInput, match="not an ISO date"):
        parse_since("28/11/2026")


def test_since_takes_an_iso_time_or_a_date() -> None:
    assert parse_since("2026-11-29T09:00+03:00") == datetime(2026, 11, 29, 6, tzinfo=UTC)
    assert parse_since("2026-11-29") == datetime(2026, 11, 29, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="--since"):
        parse_since("yesterday")
