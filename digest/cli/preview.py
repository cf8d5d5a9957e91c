"""`digest preview`: the email a subscriber or a topic mix would get, for editors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.context import app_context, parse_day, parse_now, refuse_overwrite
from digest.db.engine import session_scope
from digest.errors import InvalidInput
from digest.preview import reader as preview
from digest.render.renderer import Renderer, RenderOptions


def run(
    ctx: typer.Context,
    list_slug: Annotated[str, typer.Option("--list", help="The list whose digest to preview.")],
    subscriber: Annotated[
        str | None, typer.Option("--subscriber", help="Preview what this subscriber gets.")
    ] = None,
    topics: Annotated[
        str | None, typer.Option("--topics", help="Or this topic mix, comma-separated, in order.")
    ] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="Digest of this day (YYYY-MM-DD); default: now.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
    text: Annotated[bool, typer.Option("--text", help="The plain-text part, not HTML.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", hidden=True, help="Pretend it is this moment (tests).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Render a digest exactly as sent, with tracking off (no pixel, direct links).

    Example: digest preview --list daily --topics economy,politics --date 2026-11-28 -o p.html
    """
    context = app_context(ctx)
    if output is not None:
        refuse_overwrite(output, force=force, option="--output")
    renderer = Renderer(RenderOptions.from_settings(context.settings))
    slugs = [s.strip() for s in (topics or "").split(",") if s.strip()]
    request = preview.PreviewRequest(
        list_slug,
        email=subscriber,
        topic_slugs=slugs,
        day=parse_day(day) if day else None,
        now=parse_now(now) if now else None,
    )
    options = preview.PreviewOptions.from_settings(context.settings)
    with session_scope(context.engine) as session:
        message = preview.preview(session, options, renderer, request)
    body = message.text if text else message.html
    if output is None:
        sys.stdout.write(body)
        return
    try:
        output.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {output} ({len(message.article_ids)} articles)", err=True)
