"""`digest topics`: the subjects subscribers choose."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.catalog import topics
from digest.cli.context import app_context, print_json, print_table
from digest.cli.terminal import plain
from digest.db.engine import session_scope

app = typer.Typer(help="Topics.\n\nExample: digest topics list", no_args_is_help=True)


@app.command()
def add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Short ASCII name used in CSV files and URLs.")],
    name: Annotated[str, typer.Option("--name", help="Arabic name shown to subscribers.")],
    name_en: Annotated[str | None, typer.Option("--name-en", help="English name.")] = None,
    keyword: Annotated[
        list[str] | None, typer.Option("--keyword", "-k", help="Word that tags an article.")
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Feed category meaning this topic.")
    ] = None,
) -> None:
    """Create a topic.

    Example: digest topics add economy --name اقتصاد --name-en Economy -k نفط -k بورصة
    """
    with session_scope(app_context(ctx).engine) as session:
        topic = topics.add_topic(
            session,
            slug=slug,
            name=name,
            name_en=name_en,
            keywords=keyword or [],
            aliases=alias or [],
        )
    typer.echo(f"topic {plain(topic.slug)} created")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every topic.

    Example: digest topics list --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        found = topics.all_topics(session)
    if as_json:
        print_json([topics.topic_as_dict(t) for t in found])
        return
    print_table(
        context.console,
        "Topics",
        ["slug", "name", "name_en", "keywords"],
        ((t.slug, t.name, t.name_en, "، ".join(t.keywords)) for t in found),
    )
