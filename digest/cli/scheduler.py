"""`digest scheduler`: run ingest, dispatch, retries and housekeeping on time (or once)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.schedule.scheduler import STALE_POLLS, Scheduler
from digest.service.liveness import Heartbeat, liveness
from digest.service.logs import service_logging


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
    With \\[scheduler] health_port set, http://127.0.0.1:PORT/healthz answers 200 while the
    scheduler's heartbeat is fresh and 503 once it is stale. The log goes to stdout (\\[log]).

    Example: digest scheduler --once
    """
    context = app_context(ctx)
    settings = context.settings
    config = settings.scheduler
    with ExitStack() as stack:
        stack.enter_context(service_logging(settings.log))
        heartbeat = Heartbeat("scheduler", STALE_POLLS * config.leader_poll_seconds)
        if not once:
            server = liveness(heartbeat, config.health_port, "scheduler.health_port")
            if server is not None:
                stack.callback(server.close)
        scheduler = Scheduler(context.engine, settings, beat=heartbeat.beat)
        with scheduler.signals():
            if not once:
                scheduler.serve()
                return
            runs = scheduler.run_once()
    if runs is not None and any(run.status == "error" for run in runs):
        raise typer.Exit(1)
