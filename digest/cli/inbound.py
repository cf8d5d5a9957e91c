"""`digest inbound`: the bounce domain's SMTP server, and `digest inbound process` for files."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Annotated

import typer
from sqlalchemy.exc import InterfaceError, OperationalError

from digest.cli.context import app_context, database_problem, fail, print_json
from digest.cli.terminal import plain
from digest.errors import SchemaError
from digest.inbound.gate import Gate
from digest.inbound.process import InboundUnavailable, Processor
from digest.inbound.server import serve, tls_context
from digest.inbound.sources import STDIN, Envelope, Item, Skipped, read_sources
from digest.inbound.tally import Tally, feed
from digest.service.logs import service_logging

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Read what comes back: bounces, complaints and mailto unsubscribes.",
    no_args_is_help=False,
    invoke_without_command=True,
)


_MX_HELP = """Read what comes back: bounces, complaints and mailto unsubscribes.

Without a subcommand: run the SMTP server of the bounce domain (\\[inbound] domain, whose
MX points here). It takes mail only for signed b-/u- addresses and the \\[inbound]
mailboxes at that domain (550 at RCPT for anything else), answers 250 once a message is
in its spool on disk (\\[inbound] spool_dir; 451 when it cannot be written: the sender
retries), from which a second process stores and applies it (while the database is
unavailable the messages wait there), and on SIGTERM or Ctrl-C stops listening, answers
the messages being received, processes what is spooled, then exits 0.

Example: digest inbound --host 0.0.0.0 --port 25
"""


@app.callback(help=_MX_HELP)
def mx(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default \\[inbound] host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="Port (default \\[inbound] port; 0: any free one)."
        ),
    ] = None,
) -> None:
    """Without a subcommand: the bounce domain's SMTP server (help above)."""
    if ctx.invoked_subcommand is not None:
        return
    context = app_context(ctx)
    changes = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    inbound = context.settings.inbound.model_copy(update=changes)
    settings = context.settings.model_copy(update={"inbound": inbound})
    Gate.from_settings(settings)  # no bounce domain: say so before opening the database
    tls_context(inbound)
    engine = context.engine

    def ready(bound_host: str, bound_port: int) -> None:
        typer.echo(f"digest inbound: listening on {bound_host}:{bound_port}", err=True)

    with service_logging(settings.log):
        serve(settings, engine, ready=ready)


# sysexits.h codes, as MTAs read them (Postfix pipe(8), Exim's pipe transport): 75 keeps
# the message queued and tries again later; the others fail it.
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_TEMPFAIL = 75


@app.command("process")
def process(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PATH…|-]",
            help=".eml files, mbox files, Maildirs or directories of them; - reads one "
            "message on standard input.",
            show_default=False,
        ),
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option("--sender", help="Envelope sender, for stdin (an MTA's ${sender})."),
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient", help="Envelope recipient, for stdin (repeatable; ${original_recipient})."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Classify and apply bounces, complaints and mailto unsubscribes from files or stdin.

    Messages are read one at a time and stored in batches of 100 (one transaction each);
    a message already stored is a duplicate and changes nothing, so running twice is safe.
    A message over \\[inbound] max_message_bytes is skipped and named. For stdin the
    envelope comes from --sender/--recipient, then SENDER, ORIGINAL_RECIPIENT and RECIPIENT
    in the environment (Postfix local(8), Exim), then the Return-Path, X-Original-To and
    Delivered-To headers the MTA prepended (Postfix pipe flags R, O, D).

    Exit status: 0 processed (unknown messages included), 64 bad usage, 65 standard input held
    no message, 66 a path could not be read (the others were processed), 75 the database is
    unavailable, locked or not migrated (an MTA keeps the message and retries).

    Postfix: route the bounce domain to this transport (transport_maps), with
    digest-inbound_destination_recipient_limit = 1 in main.cf, and in master.cf:

    \b
    digest-inbound unix - n n - 4 pipe
      flags=DOR user=digest argv=/srv/digest/.venv/bin/digest
      --config /etc/digest/settings.toml inbound process -

    Example: digest inbound process ~/Maildir/.Bounces bounces.mbox
    """
    settings = app_context(ctx).settings
    if not paths:
        raise fail("give PATH… to read, or - for one message on standard input", EX_USAGE)
    if paths.count(STDIN) > 1:
        raise fail("- (standard input) can be read once only", EX_USAGE)
    envelope = Envelope(sender=sender, recipients=tuple(recipient or ()))
    items = read_sources(
        paths,
        max_bytes=settings.inbound.max_message_bytes,
        stdin=sys.stdin.buffer,
        environ=os.environ,
        envelope=envelope,
    )
    tally = Tally()
    status = EX_OK
    problem = ""
    try:
        engine = app_context(ctx).engine
        feed(Processor(engine, settings).process, _reported(items), tally)
    except (InboundUnavailable, SchemaError) as exc:
        status, problem = EX_TEMPFAIL, str(exc)
    except (OperationalError, InterfaceError) as exc:
        status, problem = EX_TEMPFAIL, database_problem(exc)
    except Exception as exc:  # anything else, too, must not make the MTA drop the mail
        # An exit status outside sysexits is a permanent failure to Postfix's pipe(8): it
        # bounces the message, and a bounce of a bounce (null sender) is thrown away.
        log.exception("inbound process failed")
        status, problem = EX_TEMPFAIL, f"processing failed ({type(exc).__name__})"
    _summary(tally, as_json=as_json, status=status)
    if status == EX_TEMPFAIL:
        raise fail(f"{problem}; nothing after the last stored batch was processed", status)
    if any(s.where != STDIN for s in tally.unreadable):
        raise typer.Exit(EX_NOINPUT)
    if tally.unreadable:  # standard input held no message
        raise typer.Exit(EX_DATAERR)


def _reported(items: Iterable[Item]) -> Iterator[Item]:
    # Each skip is named on stderr as it is met, before the batch it sits in is stored.
    for item in items:
        if isinstance(item, Skipped):
            typer.echo(f"skipped {plain(item.where)}: {plain(item.why)}", err=True)
        yield item


def _summary(tally: Tally, *, as_json: bool, status: int) -> None:
    if as_json:
        print_json({**tally.as_dict(), "exit_status": status})
        return
    for line in tally.lines():
        typer.echo(line)
