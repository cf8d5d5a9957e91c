"""`digest bounces list | show`: what came back, and why an address is suppressed."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from digest.cli.context import app_context, parse_since, print_json
from digest.cli.terminal import plain
from digest.db.engine import session_scope
from digest.inbound.events import KINDS, EventFilter, address_story, list_events, parse_kind
from subscribers import lists

app = typer.Typer(
    help="Bounces, complaints and mailto unsubscribes that came back.\n\n"
    "Example: digest bounces list --type hard_bounce --since 2026-11-29",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only events received since (ISO date/time, UTC default)."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--type", help=f"Only this kind: {', '.join(KINDS)}.")
    ] = None,
    list_slug: Annotated[
        str | None, typer.Option("--list", "-l", help="Only events traced to this list.")
    ] = None,
    edition: Annotated[
        int | None, typer.Option("--edition", help="Only events traced to this edition id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List inbound events, newest first: bounces, delay warnings, complaints, mailto
    unsubscribes, auto-replies, challenges and unknown messages, each with what was done.

    Example: digest bounces list --type hard_bounce --since 2026-11-29T06:00+03:00 --json
    """
    context = app_context(ctx)
    wanted = EventFilter(
        since=parse_since(since) if since else None,
        kind=parse_kind(kind) if kind else None,
        edition_id=edition,
        limit=limit,
    )
    with session_scope(context.engine) as session:
        if list_slug:
            wanted = replace(wanted, list_id=lists.get_list(session, list_slug).id)
        found = list_events(session.connection(), wanted)
    if as_json:
        print_json([e.as_dict() for e in found])
        return
    if not found:
        typer.echo("no inbound events")
        return
    for event in found:
        typer.echo(plain(event.line()))
    if len(found) == limit:
        typer.echo(f"(the newest {limit}: --limit shows more)")


@app.command()
def show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address (any spelling).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show why an address is suppressed (reason, code, note, when, which delivery and
    edition), the suppressions lifted before, and every inbound event for it, newest first.

    Example: digest bounces show reem@example.org --json
    """
    with session_scope(app_context(ctx).engine) as session:
        story = address_story(session, email)
    if as_json:
        print_json(story.as_dict())
        return
    for line in story.summary():
        typer.echo(plain(line))
    if not story.events:
        typer.echo("no inbound event for this address")
        return
    typer.echo(f"{len(story.events)} inbound event(s), newest first:")
    for event in story.events:
        typer.echo("  " + plain(event.line()))
