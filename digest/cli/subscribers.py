"""`digest subscribers`: add, import, export, show, unsubscribe, suppress and remove people."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from digest.catalog import topics
from digest.cli.context import (
    actor,
    app_context,
    parse_since,
    print_json,
    progress_bar,
    refuse_overwrite,
)
from digest.cli.terminal import markup, plain
from digest.db.engine import session_scope
from digest.errors import InvalidInput
from digest.send.confirmations import mail_confirmation
from digest.send.smtp import SmtpSender
from subscribers import exports, imports, lists, people, suppressions
from subscribers.models import SubscriptionStatus

app = typer.Typer(
    help="Subscribers.\n\nExample: digest subscribers add a@example.org --list daily",
    no_args_is_help=True,
)

ListOption = Annotated[str, typer.Option("--list", "-l", help="Slug of the mailing list.")]


@app.command()
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address.")],
    list_slug: ListOption,
    name: Annotated[str, typer.Option("--name", help="Name used in the greeting.")] = "",
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="Topic chosen (default: all).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA timezone, e.g. Africa/Cairo.")
    ] = None,
    hour: Annotated[int | None, typer.Option("--hour", help="Local send hour 0-23.")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="ar or en.")] = None,
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Consent already given: skip double opt-in.")
    ] = False,
) -> None:
    """Add a person to a list (or update their topics, hour and timezone).

    Example: digest subscribers add reem@example.org --list daily -t economy --timezone Asia/Dubai
    """
    context = app_context(ctx)
    defaults = context.settings.digest
    with session_scope(context.engine) as session:
        mailing_list = lists.get_list(session, list_slug)
        chosen = topics.get_topics(session, topic or [])
        ids = [t.id for t in chosen if t.id is not None]
        people.check_topics_offered(session, mailing_list, ids, [t.slug for t in chosen])
        person = people.Person(
            email,
            timezone or defaults.timezone,
            name=name,
            locale=locale or defaults.locale,
            smtputf8=context.settings.smtp.smtputf8,
        )
        subscription = people.subscribe(
            session,
            person,
            mailing_list,
            topic_ids=ids,
            hour=hour,
            consent=people.Consent(confirmed=confirmed),
        )
    typer.echo(f"{email} on {list_slug}: {subscription.status}")
    if subscription.status == SubscriptionStatus.UNCONFIRMED:  # double opt-in: mail the link
        outcome = asyncio.run(
            mail_confirmation(
                context.engine,
                context.settings,
                SmtpSender(context.settings.smtp),
                subscriber_id=subscription.subscriber_id,
                list_id=subscription.list_id,
            )
        )
        if outcome.status != "sent":
            raise InvalidInput(
                f"the confirmation email to {email} was refused ({outcome.code} "
                f"{outcome.message}): run the same command again to resend it"
            )
        typer.echo(f"confirmation email sent to {email}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: email,name,topics,timezone,hour.")],
    list_slug: ListOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, write nothing.")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where rejected rows go (default FILE.rejects.csv)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the rejects file.")] = False,
) -> None:
    """Import subscribers from a CSV file; bad rows go to a rejects file with the reason.

    Example: digest subscribers import people.csv --list daily --rejects bad.csv
    """
    context = app_context(ctx)
    if not file.is_file():
        raise InvalidInput(f"{file}: no such file")
    with session_scope(context.engine) as session:
        mailing_list = lists.get_list(session, list_slug)
        known = {t.slug: t.id for t in topics.all_topics(session) if t.id is not None}
        known.update({t.name: t.id for t in topics.all_topics(session) if t.id is not None})
    rejects_path = rejects or file.with_name(file.stem + ".rejects.csv")
    refuse_overwrite(rejects_path, force=force, option="--rejects", source=file)
    options = imports.ImportOptions(
        default_timezone=context.settings.digest.timezone,
        default_locale=context.settings.digest.locale,
        dry_run=dry_run,
        rejects_path=rejects_path,  # written as rows are rejected
        smtputf8=context.settings.smtp.smtputf8,
    )
    total = imports.check_utf8(file)
    with progress_bar(context.console, "importing") as progress:
        task = progress.add_task("import", total=max(total - 1, 1))
        report = imports.import_csv(
            context.engine,
            file,
            mailing_list,
            known,
            options,
            progress=lambda done: progress.update(task, completed=done),
        )
    _summarise(report, rejects_path, as_json)
    if report.rejected:
        raise typer.Exit(1)


def _summarise(report: imports.ImportReport, rejects_path: Path, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                **report.as_dict(),
                "rejects_file": str(rejects_path) if report.rejects_written else None,
            }
        )
        return
    verb = "would be" if report.dry_run else "were"
    typer.echo(
        f"{report.rows} rows: {report.created} {verb} added, {report.updated} {verb} updated, "
        f"{report.activated} {verb} activated (were unconfirmed), "
        f"{report.suppressed} suppressed, {report.withdrawn} previously unsubscribed, "
        f"{report.rejected} rejected"
    )
    if report.ignored_columns:
        typer.echo(f"ignored columns: {plain(', '.join(report.ignored_columns))}")
    if report.rejects_written:
        typer.echo(f"rejected and skipped rows written to {rejects_path}", err=True)


@app.command()
def export(
    ctx: typer.Context,
    list_slug: ListOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Also unconfirmed and unsubscribed subscriptions.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Export a list's active subscribers as CSV (the format `import` reads).

    Example: digest subscribers export --list daily -o daily.csv
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        mailing_list = lists.get_list(session, list_slug)
    statuses = [s.value for s in SubscriptionStatus] if include_all else exports.DEFAULT_STATUSES
    if output is not None:
        refuse_overwrite(output, force=force, option="--output")
    if output is None:
        exports.write_csv(sys.stdout, context.engine, mailing_list, statuses)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        count = exports.write_csv(handle, context.engine, mailing_list, statuses)
    typer.echo(f"{count} subscribers written to {output}")


@app.command()
def show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show everything stored about a person, with the consent record of each list.

    Example: digest subscribers show reem@example.org --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        described = people.describe(session, email)
    if as_json:
        print_json(described)
        return
    for key, value in described.items():
        if key != "subscriptions":
            context.console.print(f"[bold]{key}[/bold]: {markup(value)}")
    for sub in described["subscriptions"]:
        context.console.print(
            f"  [bold]{markup(sub['list'])}[/bold]: "
            + markup(
                f"{sub['status']}, topics {', '.join(sub['topics']) or '(all)'}, "
                f"hour {sub['hour'] or '(list default)'}, source {sub['source']}, "
                f"requested {sub['requested_at']}"
            )
        )


@app.command()
def unsubscribe(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address.")],
    list_slug: Annotated[
        list[str] | None, typer.Option("--list", "-l", help="Only this list (default: all).")
    ] = None,
) -> None:
    """Withdraw consent (keeps the record, stops every digest of those lists).

    Example: digest subscribers unsubscribe reem@example.org --list daily
    """
    with session_scope(app_context(ctx).engine) as session:
        changed = people.unsubscribe(session, email, list_slug)
    typer.echo(f"{email}: unsubscribed from {changed} list(s)")


@app.command()
def suppress(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address.")],
    reason: Annotated[
        str, typer.Option("--reason", help="hard_bounce, soft_bounce, complaint or manual.")
    ] = "manual",
) -> None:
    """Never mail an address again, on any list.

    Example: digest subscribers suppress spam-trap@example.org --reason complaint
    """
    with session_scope(app_context(ctx).engine) as session:
        people.suppress(session, email, reason)
    typer.echo(f"{email} suppressed ({reason})")


@app.command()
def unsuppress(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Argument(help="Email address (or use --since).")] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is lifted (kept in the audit).")
    ] = "",
    since: Annotated[
        str | None,
        typer.Option("--since", help="Lift the hard bounces since this ISO time (one run)."),
    ] = None,
    reason_code: Annotated[
        str | None,
        typer.Option("--reason-code", help="Only replies with this code: 550, 5.1.1 or 5.1."),
    ] = None,
    list_slug: Annotated[
        str | None, typer.Option("--list", "-l", help="Only bounces of this list.")
    ] = None,
    edition: Annotated[
        int | None, typer.Option("--edition", help="Only bounces of this edition.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be lifted; change nothing.")
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who lifts it (default: cli:USER).")
    ] = None,
) -> None:
    """Lift a suppression (mail the address again), or one run's hard bounces at once.

    With --since: the hard bounces suppressed since then (never complaints or manual ones),
    narrowed by --reason-code, --list, --edition; --dry-run shows them. Each lift is audited.

    Example: digest subscribers unsuppress --since 2026-11-29T06:00+03:00 --reason-code 5.1.1
    --reason "relay misconfigured" --dry-run
    """
    audit = suppressions.Audit(actor(by), reason)
    with session_scope(app_context(ctx).engine) as session:
        if (email is None) == (since is None):
            raise InvalidInput("give either an EMAIL or --since (a run's hard bounces)")
        if email is not None:
            line = suppressions.unsuppress(session, email, audit)
            typer.echo(plain(f"{line.email}: suppression ({line.reason}) lifted"))
            return
        run = suppressions.RunFilter(
            since=parse_since(since or ""),
            reason_code=reason_code,
            list_id=lists.get_list(session, list_slug).id if list_slug else None,
            edition_id=edition,
        )
        found = suppressions.unsuppress_run(session, run, audit, dry_run=dry_run)
        for row in found[:20]:
            typer.echo(f"  {plain(row.email)}  {plain(row.note[:60])}  (edition {row.edition_id})")
        more = f" ({len(found) - 20} more not shown)" if len(found) > 20 else ""
        verb = "would be lifted (dry run)" if dry_run else "lifted"
        typer.echo(f"{len(found)} hard bounce suppression(s) {verb}{more}")


@app.command()
def remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Email address.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Erase a person and all their data (right to erasure); cannot be undone.

    Example: digest subscribers remove reem@example.org --yes
    """
    if not yes:
        typer.confirm(f"Erase {email} and all their data?", abort=True)
    with session_scope(app_context(ctx).engine) as session:
        removed = people.remove(session, email)
    typer.echo(f"{plain(removed.email)} erased")
