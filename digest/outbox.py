"""The outbox: Delivery rows are the truth about what was sent.

A row is written (queued) before any SMTP transaction, moved to `sending` when a batch is
claimed, and to sent / failed_temporary / failed_permanent right after its own transaction,
each in its own commit. So a crash can leave only the messages that were in flight in
`sending`: a restart sends those again, and nothing else twice. The unique key
(edition, subscriber) makes planning twice a no-op.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect

from digest.bulk import DriverSql
from digest.models import DeliveryStatus, EditionStatus
from digest.select import DELIVERY, Due, Selection
from digest.send import RetryPolicy
from subscribers.models import SubscriptionStatus, SuppressionReason

# Smtp_message of a digest not sent because the scheduler came back too long after its hour.
LATE_NOTE = "skipped: past the lateness limit (the scheduler was not running at its hour)"


@dataclass(frozen=True)
class PlanReport:
    queued: int
    skipped_empty: int
    already_planned: int
    skipped_late: int = 0


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for sending, with what is needed to build its message."""

    id: int
    edition_id: int
    list_id: int
    subscriber_id: int
    email: str
    name: str
    locale: str
    local_date: date
    topic_ids: tuple[int, ...]
    article_ids: tuple[int, ...]
    attempts: int
    created_at: datetime

    @property
    def segment_key(self) -> tuple[object, ...]:
        return (self.topic_ids, self.article_ids, self.locale, self.local_date)


def plan(engine: Engine, selection: Selection, now: datetime) -> PlanReport:
    """Write one Delivery per due subscription: queued, or skipped when it has no articles."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        dates = {d.local_date for s in selection.segments for d in s.recipients}
        dates |= {d.local_date for d in selection.empty}
        dates |= {d.local_date for d in selection.late}
        waiting = {d.local_date for d in selection.waiting} - dates
        editions = _editions(sql, selection.list_id, sorted(dates), now, sorted(waiting))
        stamp = sql.stamp(DELIVERY.c.created_at, now)
        rows: list[tuple[object, ...]] = []
        # Most subscribers share a window and a segment: convert each value once, not per row.
        windows: dict[tuple[datetime, object], object] = {}
        texts: dict[tuple[int, ...], str] = {}

        def moment(value: datetime) -> object:
            key = (value, value.tzinfo)  # equal instants in two zones may be stored apart
            found = windows.get(key)
            if found is None:  # window_start and window_end have the same column type
                found = windows[key] = sql.stamp(DELIVERY.c.window_start, value)
            return found

        def text(ids: Sequence[int]) -> str:
            key = tuple(ids)
            found = texts.get(key)
            if found is None:
                found = texts[key] = sql.json(list(key))
            return found

        def row(
            due: Due,
            status: str,
            topic_ids: Sequence[int],
            article_ids: Sequence[int],
            note: str = "no new articles",
        ) -> None:
            rows.append(
                (
                    editions[due.local_date],
                    selection.list_id,
                    due.subscriber_id,
                    status,
                    0,
                    stamp,
                    moment(due.window_start),
                    moment(due.window_end),
                    due.locale,
                    text(topic_ids),
                    text(article_ids),
                    stamp,
                    stamp,
                    note if status == DeliveryStatus.SKIPPED else "",
                )
            )

        for planned in selection.segments:
            for due in planned.recipients:
                row(due, DeliveryStatus.QUEUED, planned.topic_ids, planned.article_ids)
        for due in selection.empty:
            row(due, DeliveryStatus.SKIPPED, due.topic_ids, ())
        for due in selection.late:
            row(due, DeliveryStatus.SKIPPED, due.topic_ids, (), LATE_NOTE)
        before = _count(connection, selection.list_id)
        sql.many(
            "INSERT INTO delivery (edition_id, list_id, subscriber_id, status, attempts, "
            "next_attempt_at, window_start, window_end, locale, topic_ids, article_ids, "
            f"created_at, updated_at, smtp_message) VALUES ({sql.marks(14)}) "
            "ON CONFLICT (edition_id, subscriber_id) DO NOTHING",
            rows,
        )
        inserted = _count(connection, selection.list_id) - before
    empty = len(selection.empty)
    queued = sum(len(s.recipients) for s in selection.segments)
    return PlanReport(
        queued=min(queued, inserted),
        skipped_empty=empty,
        already_planned=len(rows) - inserted,
        skipped_late=len(selection.late),
    )


def _editions(
    sql: DriverSql, list_id: int, dates: Sequence[date], now: datetime, drafts: Sequence[date] = ()
) -> dict[date, int]:
    """The editions of `dates`, going out now; those of `drafts` (waiting for an editor) exist."""
    stamp = sql.stamp(DELIVERY.c.created_at, now)
    sql.many(
        "INSERT INTO edition (list_id, local_date, status, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (list_id, local_date) DO NOTHING",
        [(list_id, d.isoformat(), EditionStatus.SENDING.value, stamp) for d in dates]
        + [(list_id, d.isoformat(), EditionStatus.DRAFT.value, stamp) for d in drafts],
    )
    # Made ahead by editors (draft, approved), or done for the earlier time zones (sent): an
    # edition is sending again while rows are planned for it. A held one stays held.
    sql.many(
        "UPDATE edition SET status = ? "
        "WHERE list_id = ? AND local_date = ? AND status IN (?, ?, ?)",
        [
            (
                EditionStatus.SENDING.value,
                list_id,
                d.isoformat(),
                EditionStatus.DRAFT.value,
                EditionStatus.APPROVED.value,
                EditionStatus.SENT.value,
            )
            for d in dates
        ],
    )
    found = sql.pairs(
        "SELECT local_date, id FROM edition WHERE list_id = ? AND local_date IN ({in})",
        [d.isoformat() for d in dates],
        list_id,
    )
    return {_day(k): v for k, v in found.items()}


def _count(connection: Connection, list_id: int) -> int:
    mark = DriverSql(connection).mark
    return int(
        connection.exec_driver_sql(
            f"SELECT COUNT(*) FROM delivery WHERE list_id = {mark}", (list_id,)
        ).scalar_one()
    )


def release_orphans(engine: Engine, list_id: int | None = None) -> int:
    """Put back in the queue what a dead process left in `sending` (call under the send lock).

    Rows under a worker's lease are not touched: `digest worker` reclaims those itself once
    the lease has run out (`digest.worker`)."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        where = "status = ? AND lease_until IS NULL" + (
            " AND list_id = ?" if list_id is not None else ""
        )
        params: tuple[object, ...] = (DeliveryStatus.SENDING.value,)
        params += (list_id,) if list_id is not None else ()
        result = connection.exec_driver_sql(
            f"UPDATE delivery SET status = {sql.mark} WHERE " + where.replace("?", sql.mark),
            (DeliveryStatus.QUEUED.value, *params),
        )
        return int(result.rowcount or 0)


def requeue(engine: Engine, ids: Sequence[int]) -> None:
    """Give claimed rows back to the queue untouched (nothing was sent for them)."""
    if not ids:
        return
    with engine.begin() as connection:
        sql = DriverSql(connection)
        sql.many(
            "UPDATE delivery SET status = ?, attempts = attempts - 1 WHERE id = ? AND status = ?",
            [(DeliveryStatus.QUEUED.value, i, DeliveryStatus.SENDING.value) for i in ids],
        )


def claim(
    engine: Engine, *, list_id: int, now: datetime, limit: int, edition_date: date | None = None
) -> list[Claimed]:
    """Take up to `limit` sendable deliveries of the list: queued ones and retries now due.

    Rows whose subscription was withdrawn or whose address was suppressed since planning
    are skipped here, so they are never sent.
    """
    with engine.begin() as connection:
        sql = DriverSql(connection)
        m = sql.mark
        stamp = sql.stamp(DELIVERY.c.created_at, now)
        date_filter = f" AND e.local_date = {m}" if edition_date else ""
        on_date: tuple[object, ...] = (edition_date.isoformat(),) if edition_date else ()
        # Queued rows first, then retries now due, each in (next_attempt_at, id) order: both walk
        # ix_delivery_status_next in order and stop at the limit. One `status = queued OR ...`
        # query ordered by id joined and sorted every sendable row of the list on each claim:
        # quadratic, seconds per batch at 100,000 subscribers.
        head = (
            "SELECT d.id, d.edition_id, d.list_id, d.subscriber_id, s.email, s.name, d.locale, "
            "e.local_date, d.topic_ids, d.article_ids, d.attempts, d.created_at, u.status, "
            "p.id FROM delivery d JOIN edition e ON e.id = d.edition_id "
            "JOIN subscriber s ON s.id = d.subscriber_id "
            "LEFT JOIN subscription u ON u.subscriber_id = d.subscriber_id "
            "AND u.list_id = d.list_id LEFT JOIN suppression p ON p.email = s.email "
            f"WHERE d.list_id = {m} AND d.status = {m} AND e.status <> '{EditionStatus.HELD}'"
        )
        order = " ORDER BY d.next_attempt_at, d.id LIMIT {}"
        rows = list(
            connection.exec_driver_sql(
                head + date_filter + order.format(int(limit)),
                (list_id, DeliveryStatus.QUEUED.value, *on_date),
            )
        )
        if len(rows) < limit:
            rows += connection.exec_driver_sql(
                head
                + f" AND d.next_attempt_at <= {m} AND d.updated_at < {m}"
                + date_filter
                + order.format(int(limit) - len(rows)),
                # updated_at: a retry is never taken again by the run that just failed it
                (list_id, DeliveryStatus.FAILED_TEMPORARY.value, stamp, stamp, *on_date),
            ).all()
        claimed: list[Claimed] = []
        gone: list[tuple[object, ...]] = []
        for (
            did,
            eid,
            lid,
            sid,
            email,
            name,
            locale,
            local_date,
            topic_ids,
            article_ids,
            attempts,
            created_at,
            sub_status,
            suppressed,
        ) in rows:
            if suppressed is not None or sub_status != SubscriptionStatus.ACTIVE:
                reason = (
                    "suppressed before sending" if suppressed else "unsubscribed before sending"
                )
                gone.append((DeliveryStatus.SKIPPED.value, reason, stamp, did))
                continue
            claimed.append(
                Claimed(
                    did,
                    eid,
                    lid,
                    sid,
                    email,
                    name,
                    locale,
                    _day(local_date),
                    _ids(topic_ids),
                    _ids(article_ids),
                    attempts + 1,
                    _moment(sql, created_at),
                )
            )
        sql.many(
            "UPDATE delivery SET status = ?, smtp_message = ?, updated_at = ? WHERE id = ? "
            "AND status IN (?, ?)",
            [
                (*g, DeliveryStatus.QUEUED.value, DeliveryStatus.FAILED_TEMPORARY.value)
                for g in gone
            ],
        )
        taken = _take(sql, [c.id for c in claimed], stamp)
    return [c for c in claimed if c.id in taken]


def _take(sql: DriverSql, ids: Sequence[int], stamp: object) -> set[int]:
    """Move to `sending` those of `ids` that are still sendable, and say which they were.

    A compare-and-set: the SELECT of `claim` runs outside the write transaction on SQLite,
    so two senders (no lock held) may both see a row; only one of them gets it here.
    """
    if not ids:
        return set()
    m = sql.mark
    # The status test is a CASE so that no index serves it: SQLite otherwise walks
    # ix_delivery_status_next through every queued row (all lists) instead of looking up
    # the ids, which made each claim cost O(rows still queued): quadratic in the list size.
    rows = sql.connection.exec_driver_sql(
        f"UPDATE delivery SET status = {m}, attempts = attempts + 1, updated_at = {m} "
        f"WHERE id IN ({sql.marks(len(ids))}) AND CASE WHEN status = {m} THEN 1 "
        f"WHEN status = {m} AND next_attempt_at <= {m} AND updated_at < {m} THEN 1 "
        "ELSE 0 END = 1 RETURNING id",
        (
            DeliveryStatus.SENDING.value,
            stamp,
            *ids,
            DeliveryStatus.QUEUED.value,
            DeliveryStatus.FAILED_TEMPORARY.value,
            stamp,
            stamp,
        ),
    ).all()
    return {row[0] for row in rows}


@dataclass(frozen=True)
class Result:
    """What happened to one claimed delivery (written by `record`)."""

    delivery_id: int
    status: str  # sent | temporary | permanent
    code: int | None
    message: str
    message_id: str | None
    email: str
    hard_bounce: bool = False  # permanent and about the address: suppress it
    article_ids: tuple[int, ...] | None = None  # what the message really held


_SENT = (
    "UPDATE delivery SET status = ?, smtp_code = ?, smtp_message = ?, message_id = ?, "
    "sent_at = ?, updated_at = ?, next_attempt_at = NULL, article_ids = ? WHERE id = ?"
)


class Recorder:
    """Writes each outcome in its own small transaction, right after its SMTP transaction.

    Inside `with recorder.connected():` every outcome reuses one connection, still with one
    commit each: checking a pooled connection out and back in per message cost more than the
    UPDATE and its commit (send bench: ~450 µs a message, ~130 µs reused).
    """

    def __init__(self, engine: Engine, policy: RetryPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self._connection: Connection | None = None
        self._to_db: Callable[[datetime], Any] | None = None

    @contextmanager
    def connected(self) -> Iterator[None]:
        """Keep one connection for the outcomes recorded inside (no transaction stays open)."""
        if self._connection is not None:
            yield
            return
        with self.engine.connect() as connection:
            self._connection = connection
            try:
                yield
            finally:
                self._connection = None

    def record(self, claimed: Claimed, result: Result, now: datetime) -> str:
        """Store the outcome and commit it; returns the delivery's new status."""
        connection = self._connection
        if connection is None:
            with self.engine.begin() as fresh:
                return self._write(fresh, claimed, result, now)
        try:
            status = self._write(connection, claimed, result, now)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
        return status

    def _stamp(self, connection: Connection, moment: datetime) -> Any:
        if self._to_db is None:  # the column type's bind processor, looked up once
            dialect = connection.dialect
            processor = DELIVERY.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
            self._to_db = processor or (lambda value: value)
        return self._to_db(moment)

    def _write(
        self, connection: Connection, claimed: Claimed, result: Result, now: datetime
    ) -> str:
        sql = DriverSql(connection)
        stamp = self._stamp(connection, now)
        message = result.message[:500]
        if result.status == "sent":
            status = DeliveryStatus.SENT.value
            held = claimed.article_ids if result.article_ids is None else result.article_ids
            connection.exec_driver_sql(
                _SENT.replace("?", sql.mark),
                (
                    status,
                    result.code,
                    message,
                    result.message_id,
                    stamp,
                    stamp,
                    sql.json(list(held)),
                    claimed.id,
                ),
            )
            return status
        if result.status == "permanent":
            status = DeliveryStatus.FAILED_PERMANENT.value
            next_at = None
        if result.status == "permanent" and result.hard_bounce:
            sql.many(
                "INSERT INTO suppression (email, reason, note, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (email) DO NOTHING",
                [
                    (
                        claimed.email,
                        SuppressionReason.HARD_BOUNCE.value,
                        f"{result.code} {message}"[:500],
                        stamp,
                    )
                ],
            )
        if result.status != "permanent":
            next_at = self.policy.next_attempt(
                first_attempt=claimed.created_at, attempts=claimed.attempts, now=now
            )
            if next_at is None:
                status = DeliveryStatus.FAILED_PERMANENT.value
                message = f"gave up after {claimed.attempts} attempts: {message}"[:500]
            else:
                status = DeliveryStatus.FAILED_TEMPORARY.value
        sql.many(
            "UPDATE delivery SET status = ?, smtp_code = ?, smtp_message = ?, message_id = ?, "
            "next_attempt_at = ?, updated_at = ? WHERE id = ?",
            [
                (
                    status,
                    result.code,
                    message,
                    result.message_id,
                    None if next_at is None else self._stamp(connection, next_at),
                    stamp,
                    claimed.id,
                )
            ],
        )
        return status


def _ids(value: object) -> tuple[int, ...]:
    """A JSON list of ids as the driver returns it (text on SQLite, a list on PostgreSQL)."""
    if isinstance(value, str):
        return _parsed_ids(value)
    return tuple(value) if isinstance(value, list) else ()


@functools.lru_cache(maxsize=4096)
def _parsed_ids(text: str) -> tuple[int, ...]:
    # A batch holds a handful of distinct id lists (one per segment): parse each once.
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else ()


def _day(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _moment(sql: DriverSql, value: object) -> datetime:
    result = _moment_reader(sql.connection.dialect)
    moment = result(value) if result is not None else value
    assert isinstance(moment, datetime)
    return moment


@functools.lru_cache(maxsize=8)
def _moment_reader(dialect: Dialect) -> Callable[[Any], Any] | None:
    """How the driver's DATETIME values become datetimes (looked up once, not per row)."""
    return DELIVERY.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)
