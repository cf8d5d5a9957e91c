"""`digest scheduler`: run ingest, dispatch, retries and housekeeping on time (or once)."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.schedule.scheduler import Scheduler


def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once, now, and exit (for cron).")
    ] = False,
) -> None:
    """Run the jobs on time in the foreground: ingest, dispatch, retries, housekeeping.

    Intervals come from \\[scheduler] in the settings. Only one scheduler per database leads;
    another one waits as a follower and takes over when the leader stops. SIGTERM or Ctrl-C
    finishes and records the messages in flight, then exits 0. With --once the exit code is
    1 when a job failed; while another scheduler leads, --once runs nothing (exit 0).

    Example: digest scheduler --once
    """
    context = app_context(ctx)
    _log_to_stderr()
    scheduler = Scheduler(context.engine, context.settings)
    with scheduler.signals():
        if not once:
            scheduler.serve()
            return
        runs = scheduler.run_once()
    if runs is not None and any(run.status == "error" for run in runs):
        raise typer.Exit(1)


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Our own line per job run says what APScheduler would (and skips are logged by us).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
