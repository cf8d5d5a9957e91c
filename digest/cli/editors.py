"""`digest editors`: accounts of the web preview (`/editor`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest.cli.context import app_context, print_json, print_table
from digest.cli.terminal import plain
from digest.db.engine import session_scope
from digest.editions import editors
from digest.errors import InvalidInput

app = typer.Typer(
    help="Editor accounts of the web preview.\n\nExample: digest editors add editor@example.org",
    no_args_is_help=True,
)


@app.command()
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The editor's email (their login).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an editor account; the password is asked twice (or read with --password-stdin).

    Example: digest editors add editor@example.org
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InvalidInput("no password given")
    with session_scope(app_context(ctx).engine) as session:
        editor = editors.add_editor(session, email, password)
    typer.echo(f"editor {plain(editor.email)} added: log in at /editor")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List editor accounts and their last login.

    Example: digest editors list --json
    """
    context = app_context(ctx)
    with session_scope(context.engine) as session:
        rows = [
            {"email": e.email, "created_at": e.created_at, "last_login_at": e.last_login_at}
            for e in editors.all_editors(session)
        ]
    if as_json:
        print_json(rows)
        return
    print_table(
        context.console,
        "Editors",
        ["email", "created", "last login"],
        ((r["email"], r["created_at"], r["last_login_at"]) for r in rows),
    )


@app.command()
def remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The editor's email.")],
) -> None:
    """Delete an editor account (their recorded actions stay, under their email).

    Example: digest editors remove editor@example.org
    """
    with session_scope(app_context(ctx).engine) as session:
        editors.remove_editor(session, email)
    typer.echo(f"editor {plain(email)} removed")
