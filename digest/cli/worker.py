"""`digest worker`: send what the planners queued, alongside other workers (PostgreSQL)."""

from __future__ import annotations

import asyncio
import signal
from contextlib import ExitStack
from typing import Annotated

import typer

from digest.cli.context import app_context
from digest.send.dispatcher import DispatchOptions
from digest.send.smtp import SmtpSender
from digest.send.worker import Worker, WorkerOptions, share_of_rate
from digest.service.liveness import Heartbeat, liveness
from digest.service.logs import service_logging


def run(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=256, help="SMTP connections (default \\[smtp])."
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Exit when nothing is left to claim.")
    ] = False,
) -> None:
    """Claim batches of queued deliveries and due retries, and send them (PostgreSQL).

    Run as many as you like, on as many machines, against one database: rows are taken
    with FOR UPDATE SKIP LOCKED under a lease (\\[workers] lease_seconds) that the worker
    renews while it sends them; rows of a worker that died are taken again when its lease
    runs out. A database restart is ridden out (outcomes are recorded once it is back).
    Each worker sends at most \\[smtp] rate / \\[workers] count messages per second. SIGTERM
    or Ctrl-C finishes the batch in flight, then exits 0. With \\[workers] health_port set,
    http://127.0.0.1:PORT/healthz answers 200 while the worker's heartbeat is fresh and 503
    once it is a lease old. The log goes to stdout (\\[log]).

    Example: digest worker --concurrency 8
    """
    context = app_context(ctx)
    settings = context.settings
    engine = context.engine  # an unmigrated database stops here with a clear error
    smtp = settings.smtp.model_copy(
        update={
            "rate": share_of_rate(settings),
            "connections": concurrency or settings.smtp.connections,
        }
    )
    options = DispatchOptions.from_settings(settings, concurrency=smtp.connections)
    heartbeat = Heartbeat("worker", settings.workers.lease_seconds)
    worker = Worker(
        engine,
        SmtpSender(smtp),
        options,
        WorkerOptions.from_settings(settings),
        beat=lambda: heartbeat.beat("running"),
    )
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    with ExitStack() as stack:
        stack.enter_context(service_logging(settings.log))
        if not once:
            server = liveness(heartbeat, settings.workers.health_port, "workers.health_port")
            if server is not None:
                stack.callback(server.close)
        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            asyncio.run(worker.run(once=once, stop=lambda: stopping))
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    typer.echo(
        f"worker {worker.options.name}: sent={worker.report.sent} "
        f"temporary={worker.report.temporary} permanent={worker.report.permanent}"
    )
