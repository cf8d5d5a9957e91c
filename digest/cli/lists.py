"""`digest lists`: mailing lists."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlmodel import Session

from digest.catalog import topics
from digest.cli.context import app_context, print_json, print_table
from digest.cli.terminal import markup, plain
from digest.db.engine import session_scope
from subscribers import lists

app = typer.Typer(help="Mailing lists.\n\nExample: digest lists list", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Short ASCII name of the list.")],
    name: Annotated[str, typer.Option("--name", help="Name shown to subscribers.")],
    cadence: Annotated[str, typer.Option("--cadence", help="daily or weekly.")] = "daily",
    hour: Annotated[
        int | None, typer.Option("--hour", help="Default local send hour (0-23).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="One line about it.")] = "",
    double_opt_in: Annotated[
        bool, typer.Option("--double-opt-in", help="New subscribers must confirm by email.")
    ] = False,
    needs_approval: Annotated[
        bool,
        typer.Option("--needs-approval", help="Editions go out only once an editor approves."),
    ] = False,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Topic the list offers, in order (default: all)."),
    ] = None,
) -> None:
    """Create a mailing list.

    Example: digest lists create daily --name "النشرة اليومية" --hour 7 -t politics -t economy
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        offered = topics.get_topics(session, topic or [])
        created = lists.create_list(
            session,
            lists.ListSpec(
                slug=slug,
                name=name,
                cadence=cadence,
                hour=context.settings.digest.hour if hour is None else hour,
                description=description,
                double_opt_in=double_opt_in,
                needs_approval=needs_approval,
                topic_ids=[t.id for t in offered if t.id is not None],
            ),
        )
    typer.echo(f"list {plain(created.slug)} created")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every mailing list with its subscription counts.

    Example: digest lists list --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        described = [_describe(session, m.slug) for m in lists.all_lists(session)]
    if as_json:
        print_json(described)
        return
    print_table(
        context.console,
        "Lists",
        ["slug", "name", "cadence", "hour", "topics", "active"],
        (
            (
                d["slug"],
                d["name"],
                d["cadence"],
                d["hour"],
                ", ".join(d["topics"]) or "(all)",
                d["subscriptions"]["active"],
            )
            for d in described
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The list.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one list: settings, topics and subscription counts.

    Example: digest lists show daily
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        described = _describe(session, slug)
    if as_json:
        print_json(described)
        return
    for key, value in described.items():
        context.console.print(f"[bold]{key}[/bold]: {markup(value)}")


@app.command()
def delete(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The list.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a list and its subscriptions (the subscribers themselves stay).

    Example: digest lists delete old-list --yes
    """
    context = app_context(ctx)
    if not yes:
        typer.confirm(f"Delete list {slug} and all its subscriptions?", abort=True)
    with session_scope(context.engine) as session:
        removed = lists.delete_list(session, slug)
    typer.echo(f"list {plain(slug)} deleted with {removed} subscriptions")


def _describe(session: Session, slug: str) -> dict[str, Any]:
    mailing_list = lists.get_list(session, slug)
    assert mailing_list.id is not None
    ids = lists.offered_topic_ids(session, mailing_list.id)
    by_id = {v: k for k, v in topics.topic_ids(session).items()}
    return lists.list_as_dict(
        mailing_list, [by_id[i] for i in ids], lists.subscription_counts(session, mailing_list.id)
    )
