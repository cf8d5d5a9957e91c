"""Helpers every command shares."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from digest.cli.context import progress_bar


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
