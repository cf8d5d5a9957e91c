"""`digest articles`: what ingest stored, with each article's topics and why."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.catalog import articles
from digest.cli.context import app_context, parse_since, print_json, print_table
from digest.db.engine import session_scope

app = typer.Typer(help="Articles.\n\nExample: digest articles list", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only articles ingested since (ISO date/time, UTC default)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with tag reasons).")] = False,
) -> None:
    """List the newest articles (by ingestion time) with their topics.

    Example: digest articles list --topic economy --since 2026-11-28 --json
    """
    context = app_context(ctx)
    after = parse_since(since) if since else None
    with session_scope(context.engine) as session:
        found = articles.list_articles(session, topic=topic, since=after, limit=limit)
        described = articles.describe(session, found)
    if as_json:
        print_json(described)
        return
    rows = zip(found, described, strict=True)
    print_table(
        context.console,
        "Articles",
        ["ingested", "title", "topics"],
        ((a.ingested_at.strftime("%Y-%m-%d %H:%M"), a.title, _topics(d)) for a, d in rows),
    )


def _topics(described: dict[str, object]) -> str:
    tags = described["topics"]
    assert isinstance(tags, list)
    return ", ".join(f"{t['slug']} ({t['reason']})" for t in tags)
