"""`digest ingest`: fetch the feeds and store their new and changed articles."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.context import app_context, progress_bar
from digest.cli.terminal import plain
from digest.db.engine import session_scope
from digest.ingest import article_tags as tags
from digest.ingest import pipeline as ingest
from digest.ingest.pipeline import FeedReport, FeedStatus


def run(
    ctx: typer.Context,
    feed: Annotated[
        str | None, typer.Option("--feed", help="Only this feed (URL or path, as listed).")
    ] = None,
    retag: Annotated[
        bool,
        typer.Option("--retag", help="Fetch nothing: re-tag stored articles with current topics."),
    ] = False,
) -> None:
    """Fetch every feed and store new and changed articles, tagged with topics.

    A feed that fails is reported with its URL and the others go on (exit code 1).

    Example: digest ingest --feed https://news.example.org/rss/economy.xml
    """
    context = app_context(ctx)
    if retag:
        with session_scope(context.engine) as session:
            changed = tags.retag(session)
        typer.echo(f"re-tagged: {changed} article(s) changed topics")
        return
    # No refresh thread: ingest forks parse workers for big feeds, which a thread forbids.
    with progress_bar(context.console, "feeds", auto_refresh=False) as bar:
        task = bar.add_task("ingest", total=None)

        def done(one: FeedReport) -> None:
            _print(one)
            bar.advance(task)
            bar.refresh()

        report = ingest.ingest(context.engine, context.settings.ingest, only=feed, on_feed=done)
    typer.echo(f"{len(report.feeds)} feed(s), {report.new} new article(s)")
    if report.failed:
        raise typer.Exit(1)


def _print(report: FeedReport) -> None:
    if report.status is FeedStatus.FAILED:
        typer.echo(f"error: {plain(report.url)}: {plain(report.error)}", err=True)
        return
    if report.status is FeedStatus.NOT_MODIFIED:
        typer.echo(f"{plain(report.url)}: not modified")
        return
    typer.echo(
        f"{plain(report.url)}: {report.new} new, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
    )
    for skipped in report.skipped:
        typer.echo(f"  skipped {plain(skipped.ref)}: {plain(skipped.reason)}")
