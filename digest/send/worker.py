"""`digest worker`: one of many processes sending what the planners queued (PostgreSQL).

A worker claims a batch with `claim_leased` (`digest.send.claim`: `FOR UPDATE SKIP LOCKED`,
under a lease), and sends it through the Dispatcher's machinery: segments compiled once,
one SMTP transaction per message, outcomes committed by the recorder's thread. While
it sends, it renews the lease of the batch's rows still in `sending` every lease / 3, so a
slow relay never lets another worker take live rows. A worker that dies leaves its rows in
`sending`; once their lease has run out another worker claims them again, so at most the
messages whose outcomes were not yet committed are sent twice, and none is lost. A database
restart does not stop a worker: outcomes are retried until the database is back
(`Recorder`), claims wait for it; a batch it could not finish is left to its lease like a
dead worker's.

Rate limit: each worker sends at most `[smtp] rate / [workers] count` messages per second
(per-worker shares, no shared budget): no database round trip per message, no hot row
that every worker updates, and a dead worker only lowers the total, never raises it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session

from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput
from digest.send.breaker import Breaker, BreakerTripped
from digest.send.claim import claim_leased, renew_lease, requeue
from digest.send.claimed import Claimed
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.outcome import Sender
from digest.send.record import OutcomeNotRecorded
from subscribers.models import MailingList

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def share_of_rate(settings: Settings) -> float:
    """This worker's messages per second: `[smtp] rate` split evenly (0 stays unlimited)."""
    return settings.smtp.rate / settings.workers.count


@dataclass(frozen=True)
class WorkerOptions:
    batch: int
    lease: timedelta
    poll_seconds: float
    name: str

    @classmethod
    def from_settings(cls, settings: Settings, name: str | None = None) -> WorkerOptions:
        workers = settings.workers
        return cls(
            batch=workers.batch,
            lease=timedelta(seconds=workers.lease_seconds),
            poll_seconds=workers.poll_seconds,
            name=name or worker_name(),
        )


class Worker:
    """Claims and sends batches until `stop()` (or, with `once`, until nothing is claimable)."""

    def __init__(
        self,
        engine: Engine,
        sender: Sender,
        dispatch: DispatchOptions,
        options: WorkerOptions,
        *,
        clock: Callable[[], datetime] = utcnow,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise InvalidInput(
                "digest worker needs PostgreSQL ([database] url = postgresql+psycopg://...); "
                "on SQLite `digest send` and the scheduler send in one process"
            )
        self.engine = engine
        self.sender = sender
        self.dispatch = replace(dispatch, plan_only=False)  # this is where sending happens
        self.options = options
        self.clock = clock
        # The liveness heartbeat: beaten at every turn of the loop, while idle, and while a
        # batch is sent whenever outcomes were recorded since the last lease renewal (a
        # batch that records nothing for a whole lease shows as stale).
        self.beat = beat
        self.report = DispatchReport()
        # One breaker for every list this worker sends: they share the relay it judges.
        self.breaker = Breaker(self.dispatch.breaker)
        self.trips = 0
        self._dispatchers: dict[int, Dispatcher] = {}

    def _dispatcher(self, list_id: int) -> Dispatcher:
        found = self._dispatchers.get(list_id)
        if found is None:
            with Session(self.engine, expire_on_commit=False) as session:
                mailing_list = session.get(MailingList, list_id)
            if mailing_list is None:
                raise InvalidInput(f"mailing list {list_id} does not exist")
            hooks = RunHooks(clock=self.clock, breaker=self.breaker)
            found = self._dispatchers[list_id] = Dispatcher(
                self.engine, mailing_list, self.sender, self.dispatch, hooks
            )
        return found

    async def run(self, *, once: bool = False, stop: Callable[[], bool] = lambda: False) -> None:
        async with self.sender:
            while not stop():
                self.beat()
                batch = self._claim()
                if batch is None:  # database restarting: wait, reconnect, resume
                    self.breaker.held_back()  # their rows stay `sending` until the lease ends
                    await self._idle(stop)
                elif not batch:
                    # The end of a run: what the breaker still holds is recorded (or halted).
                    await self._guarded(self._settle())
                    self._close_editions()
                    if once:
                        break
                    await self._idle(stop)
                elif not await self._send_logged(batch):
                    await self._idle(stop)
            await self._guarded(self._settle())  # stopping: nothing held is left behind
            # A worker stopped right after the last batch closes what it finished: otherwise
            # the edition would stay `sending` until some worker next finds the queue empty.
            self._close_editions()

    def _claim(self) -> list[Claimed] | None:
        """The next batch ([] when nothing is claimable, None when the database is away)."""
        try:
            return claim_leased(
                self.engine,
                worker=self.options.name,
                now=self.clock(),
                limit=self.options.batch,
                lease=self.options.lease,
                on_skipped=self._skipped,
            )
        except DBAPIError as exc:
            logger.warning("worker %s: database unavailable: %s", self.options.name, exc)
            return None

    async def _send_logged(self, batch: Sequence[Claimed]) -> bool:
        """Send `batch`; False when the breaker tripped or the database went away meanwhile."""
        if not await self._guarded(self._send(batch)):
            return False
        logger.info(
            "worker %s: batch of %d, sent=%d so far",
            self.options.name,
            len(batch),
            self.report.sent,
        )
        return True

    async def _guarded(self, work: Awaitable[None]) -> bool:
        """Await `work` (a batch, or settling what is held); False when the breaker tripped
        or the database went away. Either way the breaker is reset, so that the next batch
        is sent under a fresh judgement and no held row of this one is touched again."""
        try:
            await work
        except BreakerTripped:
            # Its editions are held and its rows queued again (the message is logged): the
            # worker stays up for the other lists, with a fresh judgement of the relay.
            self.trips += 1
            self.breaker.reset()
            return False
        except (DBAPIError, OutcomeNotRecorded) as exc:
            # Maybe mid-halt. What was not recorded stays `sending` under our lease, which is
            # no longer renewed: it runs out and the rows are claimed again, here or elsewhere.
            self.breaker.reset()
            logger.warning(
                "worker %s: database unavailable mid-batch, its unrecorded rows are "
                "claimed again in %s: %s",
                self.options.name,
                self.options.lease,
                exc,
            )
            return False
        return True

    async def _settle(self) -> None:
        """Record the failures the breaker still holds back (or halt them with its last trip),
        under their lease."""
        held = self.breaker.holding()
        if held:
            with self._renewing([c.id for c in held]):
                await self._dispatcher(held[0].list_id).settle(self.report)

    def _skipped(self, count: int) -> None:
        self.report.skipped_unsubscribed += count

    async def _send(self, batch: Sequence[Claimed]) -> None:
        """Send one claimed batch, renewing its lease meanwhile (a slow relay keeps its rows)."""
        lists: dict[int, list[Claimed]] = {}
        for item in batch:
            lists.setdefault(item.list_id, []).append(item)
        # Failures held back from earlier batches wait under our lease too.
        held = [c.id for c in self.breaker.holding()]
        with self._renewing([item.id for item in batch] + held):
            pending = list(lists.items())
            while pending:
                list_id, items = pending.pop(0)
                try:
                    await self._dispatcher(list_id).send_batch(items, self.report)
                except BreakerTripped:  # the other lists' rows go back untouched
                    requeue(self.engine, [item.id for _, rest in pending for item in rest])
                    raise

    @contextmanager
    def _renewing(self, ids: list[int]) -> Iterator[None]:
        """Every lease / 3, push back the lease of the batch's rows still being sent.

        From a thread, not a task: compiling a batch's segments holds the event loop for a
        while, and the lease must not run out meanwhile."""
        lease = self.options.lease
        done = threading.Event()
        progress = self._progress()

        def renew() -> None:
            nonlocal progress
            while not done.wait(lease.total_seconds() / 3):
                if (now := self._progress()) != progress:
                    progress = now
                    self.beat()
                try:
                    renew_lease(
                        self.engine,
                        worker=self.options.name,
                        ids=ids,
                        now=self.clock(),
                        lease=lease,
                    )
                except SQLAlchemyError as exc:  # tried again next turn; the lease may run out
                    logger.warning("worker %s: cannot renew its lease: %s", self.options.name, exc)

        thread = threading.Thread(target=renew, name=f"lease-{self.options.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _progress(self) -> tuple[int, int, int]:
        return (self.report.sent, self.report.temporary, self.report.permanent)

    async def _idle(self, stop: Callable[[], bool]) -> None:
        waited = 0.0
        while waited < self.options.poll_seconds and not stop():
            self.beat()
            await asyncio.sleep(0.1)
            waited += 0.1

    def _close_editions(self) -> None:
        for dispatcher in self._dispatchers.values():
            try:
                dispatcher.close_editions()
            except DBAPIError as exc:
                logger.warning("worker %s: cannot close editions: %s", self.options.name, exc)
