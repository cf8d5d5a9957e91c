"""`digest demo`: the main job end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.cli.terminal import markup
from digest.demo import run_demo


def run(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Where the demo keeps its database and mail: a new or empty folder, or a "
            "previous demo's (only the files it wrote there are replaced).",
        ),
    ] = Path("var/demo"),
    people: Annotated[int, typer.Option("--people", help="How many sample subscribers.")] = 36,
) -> None:
    """Run the whole pipeline on sample data: ingest, select, render, send over real SMTP.

    Everything stays on this machine: a SQLite file and an SMTP server on 127.0.0.1 that
    stores what it receives as .eml files.

    Example: digest demo --people 50
    """
    context = app_context(ctx)
    console = context.console
    result = run_demo(context.settings, directory, people=people)
    report = result.report
    console.print(f"[bold]digest demo[/bold] in {markup(result.directory)}/")
    console.print(f"  ingested the sample feed: {result.ingest.new} articles, tagged with 6 topics")
    console.print(
        f"  {result.subscribers} subscribers in 8 time zones: {report.due} due now, "
        f"{result.not_due} later today"
    )
    console.print(
        f"  sent {report.sent} digests in {report.segments} segments "
        f"({report.skipped_empty} without new articles, {report.temporary} temporary and "
        f"{report.permanent} permanent failures)"
    )
    console.print(
        f"  the SMTP server received {result.received} messages: {markup(result.mailbox)}/"
    )
    for preview in result.previews:
        console.print(f"  open in a browser: {markup(preview)}")
    if report.sent == 0 or result.received != report.sent:
        raise typer.Exit(1)
