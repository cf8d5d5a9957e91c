"""`digest feeds`: the feeds articles come from, with their default topics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from digest.catalog import topics
from digest.cli.context import app_context, print_json, print_table
from digest.cli.terminal import plain
from digest.db.engine import session_scope
from digest.ingest import feeds

app = typer.Typer(
    help="Feeds (RSS, Atom, JSON Feed).\n\nExample: digest feeds list", no_args_is_help=True
)


@app.command()
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http(s) URL of the feed, or a local file.")],
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Topic every article of this feed gets."),
    ] = None,
) -> None:
    """Add a feed; its articles get these topics, plus those their categories and keywords match.

    Example: digest feeds add https://news.example.org/rss/sports.xml -t sports
    """
    with session_scope(app_context(ctx).engine) as session:
        chosen = topics.get_topics(session, topic or [])
        feed = feeds.add_feed(session, url=url, topics=chosen)
    typer.echo(f"feed {plain(feed.url)} added")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every feed with its topics and the outcome of its last fetch.

    Example: digest feeds list --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        slugs = feeds.feed_topic_slugs(session)
        found = [(f, slugs.get(f.id or 0, [])) for f in feeds.all_feeds(session)]
    if as_json:
        print_json([feeds.feed_as_dict(f, s) for f, s in found])
        return
    print_table(
        context.console,
        "Feeds",
        ["url", "topics", "last fetched", "last error"],
        ((f.url, ", ".join(s), _when(f.last_fetched_at), f.last_error) for f, s in found),
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@app.command()
def remove(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The feed's URL or path, as listed.")],
) -> None:
    """Remove a feed; the articles it gave are kept.

    Example: digest feeds remove https://news.example.org/rss/sports.xml
    """
    with session_scope(app_context(ctx).engine) as session:
        feed = feeds.remove_feed(session, url)
    typer.echo(f"feed {plain(feed.url)} removed")
