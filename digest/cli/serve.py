"""`digest serve`: the subscriber web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.service.logs import service_logging


def run(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default \\[web] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on (default \\[web] port).")
    ] = None,
) -> None:
    """Serve tracking, unsubscribe, preferences, confirmation and view-in-browser pages.

    Stops on Ctrl-C or SIGTERM after writing every recorded open and click. GET /healthz
    answers 200 while the database answers, 503 when it does not. The log goes to stdout
    (\\[log]).

    Example: digest serve --host 0.0.0.0 --port 8000
    """
    from digest.web import serve

    context = app_context(ctx)
    web = context.settings.web
    with service_logging(context.settings.log):
        serve(context.settings, context.engine, host=host or web.host, port=port or web.port)
