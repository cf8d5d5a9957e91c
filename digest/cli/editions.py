"""`digest editions`: see an edition per segment, steer it, approve or hold it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlmodel import Session

from digest.cli.context import actor, app_context, print_json, print_table
from digest.cli.terminal import markup, plain
from digest.clock import utcnow
from digest.db.engine import session_scope
from digest.db.models import Edition, EditorAction
from digest.editions import workflow as editions
from digest.inbound.paused import brake_pause
from digest.preview.edition import EditionOverview, overview

app = typer.Typer(
    help="Editions: preview per segment, pin, exclude, subject, note, approve, hold.\n\n"
    "Example: digest editions list --list daily",
    no_args_is_help=True,
)

EditionId = Annotated[int, typer.Argument(help="The edition id (see `digest editions list`).")]
ArticleId = Annotated[int, typer.Argument(help="The article id (see `digest articles list`).")]
By = Annotated[
    str | None, typer.Option("--by", help="Who does it, for the record (default: cli:USER).")
]


def _act(ctx: typer.Context, verb: str, change: Callable[[Session], Edition]) -> None:
    with session_scope(app_context(ctx).engine) as session:
        edition = change(session)
    typer.echo(f"edition {edition.id} ({edition.local_date}): {verb}; status {edition.status}")


@app.command("list")
def list_(
    ctx: typer.Context,
    list_slug: Annotated[str | None, typer.Option("--list", "-l", help="Only this list.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most N editions.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List editions, latest first; today's and tomorrow's exist (as drafts) from then on.

    Example: digest editions list --list daily --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        editions.upcoming(
            session, timezone=context.settings.digest.timezone, now=utcnow(), list_slug=list_slug
        )
        found = editions.recent(session, list_slug=list_slug, limit=limit)
        rows = [_summary(e, m.slug, editions.delivery_counts(session, e.id or 0)) for m, e in found]
    if as_json:
        print_json(rows)
        return
    print_table(
        context.console,
        "Editions",
        ["id", "list", "date", "status", "pinned", "excluded", "subject", "note", "outbox"],
        (
            (
                r["id"],
                r["list"],
                r["date"],
                r["status"],
                " ".join(map(str, r["pinned"])),
                " ".join(map(str, r["excluded"])),
                r["subjects"].get("ar", ""),
                "yes" if r["note"] else "",
                ", ".join(f"{k} {v}" for k, v in r["outbox"].items()),
            )
            for r in rows
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    edition_id: EditionId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show an edition: per segment (topic mix), how many subscribers get which articles.

    Computed as sending would compute it, without writing anything.

    Example: digest editions show 12
    """
    context = app_context(ctx)
    found = overview(context.engine, context.settings, edition_id, now=utcnow())
    with session_scope(context.engine) as session:
        history = editions.actions(session, edition_id)
    described = _describe(found, history)
    if as_json:
        print_json(described)
        return
    echo = context.console.print
    slug = markup(found.mailing_list.slug)
    echo(f"[bold]edition {edition_id}[/bold]: {slug} {found.edition.local_date}")
    paused = brake_pause(edition_id, found.edition.status, history)
    if paused is not None:
        echo(plain(paused.line()), style="bold red", markup=False, highlight=False, soft_wrap=True)
    for key in ("status", "pinned", "top", "excluded", "topic_order", "subjects", "note"):
        echo(f"{key}: {plain(described[key])}", markup=False, highlight=False)
    for segment in described["segments"]:
        echo(
            f"\n{segment['subscribers']} subscriber(s) · "
            + plain(
                f"topics {', '.join(segment['topics'])} · {segment['locale']} · "
                f"e.g. {', '.join(segment['sample'])}"
            ),
            markup=False,
            highlight=False,
        )
        for number, article in enumerate(segment["articles"], 1):
            mark = "*" if article["lead"] else " "
            echo(f" {mark}{number:>2}. [{article['id']}] {plain(article['title'])}", markup=False)
    echo(f"\nnothing new (no email): {described['nothing_new']}")
    echo(f"already in the outbox: {plain(described['outbox'] or 'none')}", markup=False)
    for action in described["actions"]:
        echo(
            plain(f"{action['at']} {action['actor']} {action['action']} {action['detail']}"),
            markup=False,
            highlight=False,
        )


@app.command()
def approve(ctx: typer.Context, edition_id: EditionId, by: By = None) -> None:
    """Approve an edition: it goes out at its time (lists created with --needs-approval
    send nothing else).

    Example: digest editions approve 12
    """
    _act(ctx, "approved", lambda s: editions.approve(s, edition_id, actor=actor(by), now=utcnow()))


@app.command()
def hold(ctx: typer.Context, edition_id: EditionId, by: By = None) -> None:
    """Hold an edition: nothing more of it is sent until it is released.

    Example: digest editions hold 12
    """
    _act(ctx, "held", lambda s: editions.hold(s, edition_id, actor=actor(by)))


@app.command()
def release(ctx: typer.Context, edition_id: EditionId, by: By = None) -> None:
    """Release a held edition: what fell due meanwhile goes out at the next send.

    Example: digest editions release 12
    """
    _act(ctx, "released", lambda s: editions.release(s, edition_id, actor=actor(by), now=utcnow()))


@app.command()
def pin(
    ctx: typer.Context,
    edition_id: EditionId,
    article_id: ArticleId,
    top: Annotated[
        bool, typer.Option("--top", help="Top story: for every subscriber, whatever their topics.")
    ] = False,
    by: By = None,
) -> None:
    """Lead the edition with an article, for every subscriber of one of its topics.

    The article pinned last leads. With --top it goes to every subscriber of the list.

    Example: digest editions pin 12 345 --top
    """
    _act(
        ctx,
        f"article {article_id} pinned" + (" as top story" if top else ""),
        lambda s: editions.pin(s, edition_id, article_id, top=top, actor=actor(by)),
    )


@app.command()
def unpin(ctx: typer.Context, edition_id: EditionId, article_id: ArticleId, by: By = None) -> None:
    """Take the pin off an article (it is ranked like the others again).

    Example: digest editions unpin 12 345
    """
    _act(
        ctx,
        f"article {article_id} unpinned",
        lambda s: editions.unpin(s, edition_id, article_id, actor=actor(by)),
    )


@app.command()
def exclude(
    ctx: typer.Context, edition_id: EditionId, article_id: ArticleId, by: By = None
) -> None:
    """Leave an article out of every digest of the edition (e.g. a pulled story).

    Example: digest editions exclude 12 346
    """
    _act(
        ctx,
        f"article {article_id} excluded",
        lambda s: editions.exclude(s, edition_id, article_id, actor=actor(by)),
    )


@app.command()
def include(
    ctx: typer.Context, edition_id: EditionId, article_id: ArticleId, by: By = None
) -> None:
    """Undo an exclude: the article can be in the edition again.

    Example: digest editions include 12 346
    """
    _act(
        ctx,
        f"article {article_id} included",
        lambda s: editions.include(s, edition_id, article_id, actor=actor(by)),
    )


@app.command()
def subject(
    ctx: typer.Context,
    edition_id: EditionId,
    text: Annotated[str, typer.Argument(help='The subject; "" goes back to the settings\'.')],
    locale: Annotated[str, typer.Option("--locale", help="For readers of: ar or en.")] = "ar",
    by: By = None,
) -> None:
    """Set the subject of the edition's emails (placeholders as in settings: {top_title},
    {count}, {list_name}, {date}, {publisher}).

    Example: digest editions subject 12 "عاجل: {top_title}"
    """
    _act(
        ctx,
        "subject set",
        lambda s: editions.set_subject(s, edition_id, text, locale=locale, actor=actor(by)),
    )


@app.command()
def note(
    ctx: typer.Context,
    edition_id: EditionId,
    text: Annotated[str, typer.Argument(help='Plain text shown under the header; "" removes it.')],
    by: By = None,
) -> None:
    """Set the editor's note shown under the header of every email of the edition.

    Example: digest editions note 12 "تغطية خاصة للانتخابات البلدية اليوم."
    """
    _act(ctx, "note set", lambda s: editions.set_note(s, edition_id, text, actor=actor(by)))


@app.command()
def order(
    ctx: typer.Context,
    edition_id: EditionId,
    slugs: Annotated[
        list[str] | None, typer.Argument(help="Topic slugs, first first; none: readers' order.")
    ] = None,
    by: By = None,
) -> None:
    """Choose the topic order of the edition's sections (then each reader's own order).

    Example: digest editions order 12 economy politics
    """
    _act(
        ctx,
        "topic order set",
        lambda s: editions.set_order(s, edition_id, slugs or [], actor=actor(by)),
    )


def _summary(edition: Edition, list_slug: str, outbox: dict[str, int]) -> dict[str, Any]:
    return {
        "id": edition.id,
        "list": list_slug,
        "date": edition.local_date.isoformat(),
        "status": edition.status,
        "pinned": list(edition.pinned_ids),
        "top": list(edition.top_ids),
        "excluded": list(edition.excluded_ids),
        "topic_order": list(edition.topic_order),
        "subjects": dict(edition.subjects),
        "note": edition.note,
        "approved_by": edition.approved_by,
        "outbox": outbox,
    }


def _describe(found: EditionOverview, history: list[EditorAction]) -> dict[str, Any]:
    described = _summary(found.edition, found.mailing_list.slug, found.outbox)
    described["segments"] = [
        {
            "key": view.key,
            "subscribers": view.subscribers,
            "topics": list(view.topics),
            "locale": view.segment.locale,
            "sample": list(view.sample),
            "articles": [
                {"id": a.id, "title": a.title, "lead": i < view.segment.lead}
                for i, a in enumerate(view.segment.articles)
            ],
        }
        for view in found.segments
    ]
    described["nothing_new"] = found.nothing_new
    paused = brake_pause(found.edition.id or 0, found.edition.status, history)
    described["brake"] = paused.as_dict() if paused is not None else None
    described["actions"] = [
        {"at": a.at.isoformat(timespec="seconds"), "actor": a.actor, "action": a.action,
         "detail": a.detail}
        for a in history
    ]  # fmt: skip
    return described
