"""The `digest` command line: a thin layer over the library (one module per command group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import InterfaceError, OperationalError
from typer.core import TyperGroup

from digest.cli import (
    articles,
    bounces,
    db,
    demo,
    dkim,
    doctor,
    editions,
    editors,
    feeds,
    inbound,
    ingest,
    lists,
    preview,
    scheduler,
    send,
    serve,
    stats,
    subscribers,
    templates,
    topics,
    worker,
)
from digest.cli.context import AppContext, database_problem, fail
from digest.config import load_settings, parse_override
from digest.errors import ConfigError, DigestError, TemplateError


class _DigestGroup(TyperGroup):
    """Turns domain errors, and a database that is locked or unreachable, into one line on
    stderr and exit code 1, never a traceback (whose SQL parameters hold addresses); bad
    settings and templates that do not compile are bad input: exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, TemplateError) as exc:
            raise fail(str(exc), code=2) from None
        except DigestError as exc:
            raise fail(str(exc)) from None
        except (OperationalError, InterfaceError) as exc:
            raise fail(database_problem(exc)) from None


app = typer.Typer(
    cls=_DigestGroup,
    help="Arabic-first email digest engine.\n\nExample: digest --config settings.toml lists list",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Settings file (default ./settings.toml or $DIGEST_CONFIG)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="SECTION.KEY=VALUE",
            help="Override one setting for this run; beats the file and the environment.",
        ),
    ] = None,
) -> None:
    """Arabic-first email digest engine.

    Example: digest --set database.url=sqlite:///var/test.db topics list
    """
    pairs = dict(
        (".".join(keys), value) for keys, value in (parse_override(o) for o in overrides or [])
    )
    try:
        settings = load_settings(config, pairs)
    except DigestError as exc:
        if ctx.invoked_subcommand == "doctor":  # doctor reports it as its first check
            return
        raise fail(str(exc), code=2) from None  # bad settings: exit 2, like other bad input
    ctx.obj = AppContext(settings=settings)


app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(lists.app, name="lists")
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(feeds.app, name="feeds")
app.command("ingest")(ingest.run)
app.add_typer(articles.app, name="articles")
app.add_typer(editions.app, name="editions")
app.add_typer(editors.app, name="editors")
app.command("preview")(preview.run)
app.command("send")(send.run)
app.command("send-test")(send.test)
app.command("demo")(demo.run)
app.command("scheduler")(scheduler.run)
app.command("stats")(stats.run)
app.command("serve")(serve.run)
app.command("worker")(worker.run)
app.command("doctor")(doctor.run)
app.add_typer(inbound.app, name="inbound")
app.add_typer(bounces.app, name="bounces")
app.add_typer(templates.app, name="templates")
app.add_typer(dkim.app, name="dkim")


def main() -> None:
    app()
