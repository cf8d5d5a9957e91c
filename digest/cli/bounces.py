"""`digest bounces list | show`: what came back, and why an address is suppressed."""

from __future__ import annotations

import typer

app = typer.Typer(help="Bounces, complaints and mailto unsubscribes that came back.")
