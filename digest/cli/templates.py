"""`digest templates`: the publisher's own templates: export the built-ins, check a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.cli.terminal import plain
from digest.render.checks import check_templates
from digest.render.exports import export_templates

app = typer.Typer(
    help="Your own email and web templates.\n\nExample: digest templates check mytemplates",
    no_args_is_help=True,
)


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write the templates into.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace built-in templates already there.")
    ] = False,
) -> None:
    """Write the built-in email and web templates into a folder, as a starting point.

    Keep only the files you change (the others then follow upgrades).

    Point render.templates_dir at the folder. Existing files are refused unless --force.

    Example: digest templates export mytemplates
    """
    written = export_templates(directory, force=force)
    typer.echo(f"{len(written)} templates written to {plain(directory)}")


@app.command()
def check(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Templates folder (default: render.templates_dir, else the built-ins).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Render every email in Arabic and English with sample data through MJML; list problems.

    One line per problem: `file:line: message`. Exit code 0: no problem.

    Exit code 1: warnings only (a missing plain-text twin, articles dropped to fit the budget).

    Exit code 2: refused (a template does not compile; no unsubscribe link or postal address).

    Example: digest templates check mytemplates
    """
    problems = check_templates(app_context(ctx).settings, directory)
    for problem in problems:
        typer.echo(plain(str(problem)))
    fatal = sum(problem.fatal for problem in problems)
    if not problems:
        typer.echo("templates ok: every email compiles in ar and en, within the size budget")
        return
    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    typer.echo(f"{count}, {fatal} fatal")
    raise typer.Exit(2 if fatal else 1)
