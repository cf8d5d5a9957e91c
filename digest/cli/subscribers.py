"""`digest subscribers`: add, import, export, show, unsubscribe and remove people."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Subscribers.\n\nExample: digest subscribers add a@example.org --list daily",
    no_args_is_help=True,
)
