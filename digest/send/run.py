"""One list's sending run, under the list's lock: what `digest send` and the scheduler run."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from digest.db.locks import DatabaseLock, LockLost, exclusive
from digest.send.claim import release_orphans
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.outcome import Sender
from digest.send.smtp import SmtpUnavailable
from subscribers.models import MailingList


@dataclass(frozen=True)
class RunOptions:
    """What one run sends (built once at the entry point).

    `plan=False`: only the due retries and what is already queued. `now` defaults to the
    clock; `day` sends that local date's edition; `limit` caps the messages sent;
    `max_lateness`: see `select_due`.
    """

    dispatch: DispatchOptions
    plan: bool = True
    now: datetime | None = None
    day: date | None = None
    limit: int | None = None
    max_lateness: timedelta | None = None


async def send_list(
    engine: Engine,
    mailing_list: MailingList,
    sender: Sender,
    options: RunOptions,
    hooks: RunHooks | None = None,
) -> DispatchReport:
    """One list's sending run, under the list's lock (raises Busy when another one holds it).

    Re-queues what a dead sender left in flight, then plans what is due and sends it with
    the due retries (`options.plan=False`: only the retries and what is already queued).
    """
    hooks = hooks or RunHooks()
    with exclusive(engine, f"send-{mailing_list.slug}") as lock:
        hooks = replace(hooks, stop=_while_held(lock, hooks.stop))
        release_orphans(engine, mailing_list.id)
        try:
            # Plan-only (workers send): no SMTP connection is opened here.
            async with nullcontext() if options.dispatch.plan_only else sender:
                return await _run(engine, mailing_list, sender, options, hooks)
        except SmtpUnavailable:
            # Nothing could be sent: give the claimed rows back now rather than next run.
            release_orphans(engine, mailing_list.id)
            raise


def _while_held(lock: DatabaseLock, stop: Callable[[], bool] | None) -> Callable[[], bool]:
    """The run's stop check, which first makes sure the lock is still ours (before each
    batch is claimed): a server that ended the lock's session (`idle_session_timeout`, a
    failover) or a lock file removed by hand would otherwise let a second sender start and
    re-send this run's messages in flight. Raises LockLost, naming the lock."""

    def check() -> bool:
        if not lock.held():
            raise LockLost(
                f"the send lock ({lock.where}) is no longer held by this run: stopping before "
                "the next batch; what was in flight stays `sending` and the next run sends it"
            )
        return stop() if stop is not None else False

    return check


async def _run(
    engine: Engine,
    mailing_list: MailingList,
    sender: Sender,
    options: RunOptions,
    hooks: RunHooks,
) -> DispatchReport:
    dispatcher = Dispatcher(engine, mailing_list, sender, options.dispatch, hooks)
    if options.plan:
        return await dispatcher.run(
            now=options.now,
            day=options.day,
            limit=options.limit,
            max_lateness=options.max_lateness,
            stop=hooks.stop,
        )
    report = DispatchReport()
    now = options.now or hooks.clock()
    await dispatcher.send_claimed(
        report, now=now, day=options.day, limit=options.limit, stop=hooks.stop
    )
    return report
