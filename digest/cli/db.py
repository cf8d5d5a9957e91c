"""`digest db`: schema migrations."""

from __future__ import annotations

import typer

from digest.cli.context import app_context
from digest.db import engine as db

app = typer.Typer(help="Database schema.\n\nExample: digest db upgrade", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the database to the newest schema (creates it if missing).

    Example: digest db upgrade
    """
    engine = app_context(ctx).raw_engine()
    before, after = db.upgrade(engine)
    if before == after:
        typer.echo(f"database already at schema {after}")
    else:
        typer.echo(f"database upgraded from {before or 'empty'} to {after}")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the database's schema revision and the one this version needs.

    Example: digest db status
    """
    engine = app_context(ctx).raw_engine()
    typer.echo(
        f"current: {db.current_revision(engine) or 'empty'}; head: {db.head_revision(engine)}"
    )
