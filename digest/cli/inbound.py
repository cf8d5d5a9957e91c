"""`digest inbound`: the bounce domain's SMTP server, and `digest inbound process` for files."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Read what comes back: bounces, complaints and mailto unsubscribes.",
    no_args_is_help=False,
    invoke_without_command=True,
)
