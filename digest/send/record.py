"""Recording outcomes: a thread writes each message's Outcome to its Delivery row.

The send loop hands every outcome to `Recorder.submit` and goes on at once; the recorder's
thread commits them as they come, together with whatever else is already queued (group
commit, `RecordOptions.batch` at most). So the final state of a row is written as soon as
the database takes it, and a crash loses at most the outcomes not yet committed:
those rows stay `sending`, and are sent again (after a worker's lease, or at the next
`digest send` through `release_orphans`), never lost nor marked unsent.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY
from digest.errors import DigestError
from digest.send.claimed import Claimed
from digest.send.outcome import Outcome
from digest.send.retry import RetryPolicy
from subscribers.models import SuppressionReason
from subscribers.validate import email_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One claimed delivery, its SMTP transaction's Outcome, and when it came."""

    claimed: Claimed
    outcome: Outcome
    at: datetime
    message_id: str | None = None
    article_ids: tuple[int, ...] | None = None  # what the message really held


@dataclass(frozen=True)
class RecordOptions:
    """How outcomes are committed: what is queued when a commit starts, `batch` at most;
    a commit is retried for `patience` seconds while the database is unreachable (a restart
    or a failover takes a few); how outcomes reach the recorder's thread."""

    batch: int = 20
    patience: float = 30.0
    # Outcomes go to the recorder's thread in groups of `handoff`, or `linger` seconds after
    # the first of a group: waking the thread for every message made it take the GIL from
    # the send loop 1,000 times a second.
    handoff: int = 8
    linger: float = 0.005


class OutcomeNotRecorded(DigestError):
    """The database stayed unreachable while an outcome waited to be written."""


_SENT = (
    "UPDATE delivery SET status = ?, smtp_code = ?, smtp_message = ?, message_id = ?, "
    "sent_at = ?, updated_at = ?, next_attempt_at = NULL, article_ids = ? WHERE id = ?"
)
_FAILED = (
    "UPDATE delivery SET status = ?, smtp_code = ?, smtp_message = ?, message_id = ?, "
    "next_attempt_at = ?, updated_at = ? WHERE id = ?"
)
# Any unique key already taken (the address, in any spelling) means already suppressed.
_SUPPRESS = (
    "INSERT INTO suppression (email, email_key, reason, note, smtp_code, enhanced, "
    "delivery_id, edition_id, list_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)


class _Statements:
    """The rows of one commit: what each statement writes, and each attempt's new status."""

    def __init__(self, connection: Connection, policy: RetryPolicy) -> None:
        self.sql = DriverSql(connection)
        dialect = connection.dialect
        processor = DELIVERY.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.stamp: Callable[[datetime], Any] = processor or (lambda value: value)
        self.policy = policy
        self.sent: list[tuple[Any, ...]] = []
        self.failed: list[tuple[Any, ...]] = []
        self.suppressed: list[tuple[Any, ...]] = []

    def add(self, attempt: Attempt) -> str:
        claimed, outcome = attempt.claimed, attempt.outcome
        stamp = self.stamp(attempt.at)
        message = outcome.message[:500]
        if outcome.status == "sent":
            held = claimed.article_ids if attempt.article_ids is None else attempt.article_ids
            ids = self.sql.json(list(held))
            status = DeliveryStatus.SENT.value
            row = (status, outcome.code, message, attempt.message_id, stamp, stamp, ids)
            self.sent.append((*row, claimed.id))
            return status
        if not outcome.retryable:  # permanent, and not our relay's or login's doing
            if outcome.hard_bounce:
                self.suppressed.append(_suppression(attempt, stamp))
            return self._failed(attempt, DeliveryStatus.FAILED_PERMANENT.value, message, None)
        # Temporary, or refused on our side (relay, login, sender): tried again until the
        # deadline, so that fixing the configuration delivers it.
        next_at = self.policy.next_attempt(
            first_attempt=claimed.created_at, attempts=claimed.attempts, now=attempt.at
        )
        if next_at is None:
            message = f"gave up after {claimed.attempts} attempts: {message}"[:500]
            return self._failed(attempt, DeliveryStatus.FAILED_PERMANENT.value, message, None)
        status = DeliveryStatus.FAILED_TEMPORARY.value
        return self._failed(attempt, status, message, self.stamp(next_at))

    def _failed(self, attempt: Attempt, status: str, message: str, next_at: Any) -> str:
        code, stamp = attempt.outcome.code, self.stamp(attempt.at)
        row = (status, code, message, attempt.message_id, next_at, stamp, attempt.claimed.id)
        self.failed.append(row)
        return status

    def run(self) -> None:
        self.sql.many(_SENT, self.sent)
        self.sql.many(_SUPPRESS, self.suppressed)
        self.sql.many(_FAILED, self.failed)


def _suppression(attempt: Attempt, stamp: Any) -> tuple[Any, ...]:
    """The suppression row of a hard bounce: the reply, and the delivery it answered."""
    claimed, outcome = attempt.claimed, attempt.outcome
    note = f"{outcome.code} {outcome.message}"[:500]
    return (
        claimed.email,
        email_key(claimed.email),
        SuppressionReason.HARD_BOUNCE.value,
        note,
        outcome.code,
        outcome.enhanced,
        claimed.id,
        claimed.edition_id,
        claimed.list_id,
        stamp,
    )


def write_outcomes(
    connection: Connection, policy: RetryPolicy, attempts: Sequence[Attempt]
) -> list[str]:
    """Store the outcomes on `connection` (the caller commits); each delivery's new status."""
    statements = _Statements(connection, policy)
    statuses = [statements.add(attempt) for attempt in attempts]
    statements.run()
    return statuses


_STOP = object()


class Recorder:
    """Commits outcomes from its own thread, in small batches (see the module docstring).

    `start()`, then `submit()` each outcome from the send loop (it never waits for the
    database), then `close()`: it commits what is left, stops the thread, and raises the
    error that stopped recording, if any. `recorded` then holds (attempt, new status) of
    every outcome committed.

    Backpressure: at most `RecordOptions.batch` outcomes wait uncommitted. The send loop
    asks `full()` before each message and, when it is, waits in `wait_for_room()` (off the
    event loop): while the database is away no more messages go out than that, so no more
    can be left `sending` (and sent again later) if the recorder finally gives up.

    The database may be restarting (or failing over) when a message has just gone out: a
    commit is then retried on a new connection for up to `patience` seconds (the writes are
    idempotent, so a commit whose answer was lost does no harm). Past that the recorder
    gives up: the rows of that commit, and of every outcome after it, stay `sending`, and
    `submit`, `check` and `close` raise OutcomeNotRecorded. `clock` and `sleep` time the
    retries (tests replace them).
    """

    def __init__(
        self,
        engine: Engine,
        policy: RetryPolicy,
        options: RecordOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.options = options or RecordOptions()
        self.clock = clock
        self.sleep = sleep
        self.recorded: list[tuple[Attempt, str]] = []
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._group: list[Attempt] = []  # submitted, not yet handed to the thread
        self._group_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None
        self._error: BaseException | None = None
        self._room = threading.Condition()
        self._uncommitted = 0  # submitted, not yet committed (or given up on)
        self._closing = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
            self._thread.start()

    def submit(self, attempt: Attempt) -> None:
        """Queue an outcome for the next commit; raises once recording has failed, and
        after `close()` (an outcome queued then would never be written)."""
        self.check()
        if self._closing:
            raise RuntimeError(f"recorder closed: outcome of delivery {attempt.claimed.id} lost")
        with self._room:
            self._uncommitted += 1
        with self._group_lock:
            self._group.append(attempt)
            size = len(self._group)
        if size >= self.options.handoff:
            self.flush()
        elif size == 1:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to wait in: hand it over now
                self.flush()
                return
            loop.call_later(self.options.linger, self.flush)

    def flush(self) -> None:
        """Hand the outcomes submitted so far to the recorder's thread."""
        with self._group_lock:
            group, self._group = self._group, []
        if group:
            self._queue.put(group)

    def full(self) -> bool:
        """As many outcomes wait uncommitted as `RecordOptions.batch`: send no more yet
        (what waits is handed over, so that the thread can commit it)."""
        if self._uncommitted >= self.options.batch:
            self.flush()
            return True
        return False

    def wait_for_room(self) -> None:
        """Block until fewer than `batch` outcomes wait uncommitted (a blocking call: run it
        in a thread); raises the error that stopped recording, if any."""
        with self._room:
            self._room.wait_for(
                lambda: (
                    self._uncommitted < self.options.batch
                    or self._error is not None
                    or self._thread is None
                )
            )
        self.check()

    def check(self) -> None:
        """Raise the error that stopped recording, if any (send no more meanwhile)."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Commit what is queued, stop the thread, raise the error of recording if any."""
        self._closing = True
        self.flush()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        self.check()

    def _run(self) -> None:
        # Group commit: wait for one outcome, take whatever else is already queued (up to
        # `batch`), commit them together. No outcome waits for a batch to fill, so a crash
        # loses only what arrived during the commit in progress; under load the batches
        # grow by themselves and the database sees far fewer commits than messages.
        while True:
            item = self._queue.get()
            pending: list[Attempt] = []
            while isinstance(item, Attempt | list):
                if isinstance(item, list):
                    pending.extend(item)
                else:
                    pending.append(item)
                if len(pending) >= self.options.batch:
                    item = None
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            self._commit_retrying(pending)
            with self._room:  # committed, or given up on (then `_error` says so)
                self._uncommitted -= len(pending)
                self._room.notify_all()
            if item is _STOP:
                self._drop()
                return

    def _commit_retrying(self, attempts: list[Attempt]) -> None:
        if not attempts or self._error is not None:  # given up: these stay `sending`
            return
        deadline = self.clock() + self.options.patience
        pause = 0.05
        while True:
            try:
                self.recorded += zip(attempts, self._commit(attempts), strict=True)
                return
            except (OperationalError, InterfaceError) as exc:  # PEP 249: unavailable, cut off
                self._drop()
                if self.clock() + pause > deadline:
                    self._error = self._gave_up(attempts, exc)
                    return
                logger.warning("cannot record %d outcome(s) yet, retrying: %s", len(attempts), exc)
                self.sleep(pause)
                pause = min(pause * 2, 1.0)
            except BaseException as exc:  # surfaces in the send loop, not lost in this thread
                self._drop()
                self._error = exc
                return

    def _gave_up(self, attempts: list[Attempt], exc: DBAPIError) -> Exception:
        first = attempts[0]
        return OutcomeNotRecorded(
            f"delivery {first.claimed.id} ({first.claimed.email}) and {len(attempts) - 1} "
            f"other(s): outcomes not recorded, the database stayed unreachable for "
            f"{self.options.patience:g}s; the rows stay `sending` and are sent again later "
            f"(after their lease, or at the next `digest send`): {exc.orig}"
        )

    def _commit(self, attempts: list[Attempt]) -> list[str]:
        """Write and commit `attempts` in one transaction on the recorder's connection."""
        if self._connection is None:
            self._connection = self.engine.connect()
        connection = self._connection
        try:
            statuses = write_outcomes(connection, self.policy, attempts)
            connection.commit()
        except BaseException:
            with suppress(SQLAlchemyError):  # a connection cut off cannot even roll back
                connection.rollback()
            raise
        return statuses

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(SQLAlchemyError):
                connection.close()
