"""`digest send` and `digest send-test`: dispatch due digests; mail one preview to an editor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import (
    AppContext,
    app_context,
    parse_day,
    parse_now,
    print_json,
    print_table,
    progress_bar,
)
from digest.cli.terminal import plain
from digest.clock import utcnow
from digest.db.engine import session_scope
from digest.errors import InvalidInput
from digest.send.dispatcher import DispatchOptions, DispatchReport, RunHooks
from digest.send.files import FileSender
from digest.send.outcome import Sender
from digest.send.proof import send_test
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from subscribers.lists import get_list
from subscribers.models import MailingList

LABELS = {
    "due": "due now",
    "queued": "queued",
    "skipped_empty": "skipped (no new articles)",
    "already_planned": "already planned earlier",
    "sent": "sent",
    "temporary": "temporary failure (will retry)",
    "permanent": "permanent failure",
    "skipped_unsubscribed": "skipped (left or suppressed)",
    "segments": "segments compiled",
    "late": "skipped (past the lateness limit)",
    "waiting": "waiting (edition held or not approved)",
}


def make_sender(context: AppContext, to_dir: Path | None) -> Sender:
    return FileSender(to_dir) if to_dir is not None else SmtpSender(context.settings.smtp)


def run(
    ctx: typer.Context,
    list_slug: Annotated[str, typer.Option("--list", "-l", help="Slug of the mailing list.")],
    day: Annotated[
        str | None, typer.Option("--date", help="Send this local date's edition (catch up).")
    ] = None,
    to_dir: Annotated[
        Path | None, typer.Option("--to-dir", help="Write .eml files here instead of SMTP.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Send at most N messages.")] = None,
    now: Annotated[
        str | None, typer.Option("--now", hidden=True, help="Pretend it is this moment (tests).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Send the digests that are due now on a list, and retries whose time has come.

    Running it again sends nothing new; after a crash it resends only what was in flight.

    Example: digest send --list daily --to-dir var/outbox
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        mailing_list = get_list(session, list_slug)
    options = RunOptions(
        DispatchOptions.from_settings(context.settings),
        now=parse_now(now) if now is not None else utcnow(),
        day=parse_day(day) if day is not None else None,
        limit=limit,
    )
    report = asyncio.run(_dispatch(context, mailing_list, options, make_sender(context, to_dir)))
    if as_json:
        print_json(report.as_dict())
        return
    print_table(
        context.console,
        f"digest send --list {list_slug}",
        ["", "count"],
        ((LABELS[k], v) for k, v in report.as_dict().items()),
    )


async def _dispatch(
    context: AppContext, mailing_list: MailingList, options: RunOptions, sender: Sender
) -> DispatchReport:
    with progress_bar(context.console, "sending") as progress:
        task = progress.add_task("send", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, done))

        hooks = RunHooks(progress=advance)
        return await send_list(context.engine, mailing_list, sender, options, hooks)


def test(
    ctx: typer.Context,
    list_slug: Annotated[str, typer.Option("--list", "-l", help="Slug of the mailing list.")],
    to: Annotated[str, typer.Option("--to", help="Where the test goes.")],
    topics: Annotated[
        str | None, typer.Option("--topics", help="Topic mix, e.g. politics,economy.")
    ] = None,
    to_dir: Annotated[
        Path | None, typer.Option("--to-dir", help="Write an .eml file here instead of SMTP.")
    ] = None,
) -> None:
    """Mail one preview of today's digest through the real SMTP settings ("[test]" subject).

    Tracking is off; nothing is recorded in the outbox.

    Example: digest send-test --list daily --to editor@example.org --topics politics,economy
    """
    context = app_context(ctx)
    slugs = [s.strip() for s in (topics or "").split(",") if s.strip()]
    outcome = asyncio.run(
        send_test(
            context.engine,
            context.settings,
            make_sender(context, to_dir),
            list_slug=list_slug,
            to=to,
            topic_slugs=slugs,
        )
    )
    if outcome.status != "sent":
        raise InvalidInput(f"the test to {to} was not accepted: {outcome.code} {outcome.message}")
    typer.echo(f"test digest sent to {plain(to)}")
