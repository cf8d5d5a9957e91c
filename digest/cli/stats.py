"""`digest stats`: per-edition delivery, open (human and machine apart), click and bounce
figures."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.context import app_context, print_json, print_table
from digest.tracking.stats import EditionStats, edition_stats


def run(
    ctx: typer.Context,
    list_slug: Annotated[
        str | None, typer.Option("--list", "-l", help="Only this list's editions.")
    ] = None,
    edition: Annotated[int | None, typer.Option("--edition", help="Only this edition id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each edition's sent, delivered, failures, human and machine opens, clicks, top
    links, unsubscribes, and what came back by mail: hard and soft bounces, complaints and
    mailto unsubscribes; with rates over delivered messages.

    Example: digest stats --list daily --json
    """
    context = app_context(ctx)
    found = edition_stats(context.engine, list_slug=list_slug, edition_id=edition)
    if as_json:
        print_json([s.as_dict() for s in found])
        return
    if not found:
        typer.echo("no editions yet")
        return
    for stats in found:
        print_table(
            context.console,
            f"edition {stats.edition_id}: {stats.list_slug} {stats.date.isoformat()}",
            ["", "count"],
            _rows(stats),
        )


def _rows(stats: EditionStats) -> list[tuple[str, str]]:
    def pct(count: int) -> str:
        rate = stats.rate(count)
        return f"{count} ({rate:.1%})" if rate is not None else str(count)

    def fine(count: int) -> str:  # bounce and complaint thresholds are fractions of a percent
        rate = stats.rate(count)
        return f"{count} ({rate:.2%})" if rate is not None else str(count)

    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.machine_reasons.items()))
    rows = [
        ("sent", str(stats.sent)),
        ("delivered", str(stats.delivered)),
        ("temporary failures", str(stats.temporary_failures)),
        ("permanent failures", str(stats.permanent_failures)),
        ("human opens", pct(stats.human_opens)),
        ("machine opens", f"{stats.machine_opens}" + (f" ({reasons})" if reasons else "")),
        ("clicks", pct(stats.clicks)),
        ("machine clicks", str(stats.machine_clicks)),
        ("unsubscribes", pct(stats.unsubscribes)),
        ("hard bounces", fine(stats.hard_bounces)),
        ("soft bounces", fine(stats.soft_bounces)),
        ("complaints", fine(stats.complaints)),
        ("mailto unsubscribes", fine(stats.mailto_unsubscribes)),
    ]
    rows += [
        (f"top link {i}", f"{link.clicks}  {link.url}") for i, link in enumerate(stats.top_links, 1)
    ]
    return rows
