"""The outbox: Delivery rows are the truth about what was sent.

A row is written (queued) before any SMTP transaction, moved to `sending` when a batch is
claimed, and to sent / failed_temporary / failed_permanent right after its own transaction,
each in its own commit. So a crash can leave only the messages that were in flight in
`sending`: a restart sends those again, and nothing else twice. The unique key
(edition, subscriber) makes planning twice a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from digest.bulk import DriverSql
from digest.models import DeliveryStatus, EditionStatus
from digest.select import DELIVERY, Due, Selection
from digest.send import RetryPolicy
from subscribers.models import SubscriptionStatus, SuppressionReason


@dataclass(frozen=True)
class PlanReport:
    queued: int
    skipped_empty: int
    already_planned: int


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
        editions = _editions(sql, selection.list_id, sorted(dates), now)
        stamp = sql.stamp(DELIVERY.c.created_at, now)
        rows: list[tuple[object, ...]] = []

        def row(
            due: Due, status: str, topic_ids: Sequence[int], article_ids: Sequence[int]
        ) -> None:
            rows.append(
                (
                    editions[due.local_date],
                    selection.list_id,
                    due.subscriber_id,
                    status,
                    0,
                    stamp,
                    sql.stamp(DELIVERY.c.window_start, due.window_start),
                    sql.stamp(DELIVERY.c.window_end, due.window_end),
                    due.locale,
                    sql.json(list(topic_ids)),
                    sql.json(list(article_ids)),
                    stamp,
                    stamp,
                    "no new articles" if status == DeliveryStatus.SKIPPED else "",
                )
            )

        for planned in selection.segments:
            for due in planned.recipients:
                row(due, DeliveryStatus.QUEUED, planned.topic_ids, planned.article_ids)
        for due in selection.empty:
            row(due, DeliveryStatus.SKIPPED, due.topic_ids, ())
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
        queued=min(queued, inserted), skipped_empty=empty, already_planned=len(rows) - inserted
    )


def _editions(
    sql: DriverSql, list_id: int, dates: Sequence[date], now: datetime
) -> dict[date, int]:
    stamp = sql.stamp(DELIVERY.c.created_at, now)
    sql.many(
        "INSERT INTO edition (list_id, local_date, status, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (list_id, local_date) DO NOTHING",
        [(list_id, d.isoformat(), EditionStatus.SENDING.value, stamp) for d in dates],
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
    """Put back in the queue what a dead process left in `sending` (call under the send lock)."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        where = "status = ?" + (" AND list_id = ?" if list_id is not None else "")
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
        params: list[object] = [
            list_id,
            DeliveryStatus.QUEUED.value,
            DeliveryStatus.FAILED_TEMPORARY.value,
            stamp,
            stamp,  # a retry is never taken again by the run that just failed it
        ]
        if edition_date:
            params.append(edition_date.isoformat())
        rows = connection.exec_driver_sql(
            "SELECT d.id, d.edition_id, d.list_id, d.subscriber_id, s.email, s.name, d.locale, "
            "e.local_date, d.topic_ids, d.article_ids, d.attempts, d.created_at, u.status, "
            "p.id FROM delivery d JOIN edition e ON e.id = d.edition_id "
            "JOIN subscriber s ON s.id = d.subscriber_id "
            "LEFT JOIN subscription u ON u.subscriber_id = d.subscriber_id "
            "AND u.list_id = d.list_id LEFT JOIN suppression p ON p.email = s.email "
            f"WHERE d.list_id = {m} AND (d.status = {m} OR (d.status = {m} "
            f"AND d.next_attempt_at <= {m} AND d.updated_at < {m})){date_filter} "
            f"ORDER BY d.id LIMIT {int(limit)}",
            tuple(params),
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
                    tuple(_json(topic_ids)),
                    tuple(_json(article_ids)),
                    attempts + 1,
                    _moment(sql, created_at),
                )
            )
        sql.many(
            "UPDATE delivery SET status = ?, smtp_message = ?, updated_at = ? WHERE id = ?", gone
        )
        sql.many(
            "UPDATE delivery SET status = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
            [(DeliveryStatus.SENDING.value, stamp, c.id) for c in claimed],
        )
    return claimed


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


class Recorder:
    """Writes each outcome in its own small transaction, right after its SMTP transaction."""

    def __init__(self, engine: Engine, policy: RetryPolicy) -> None:
        self.engine = engine
        self.policy = policy

    def record(self, claimed: Claimed, result: Result, now: datetime) -> str:
        """Store the outcome; returns the delivery's new status."""
        with self.engine.begin() as connection:
            sql = DriverSql(connection)
            stamp = sql.stamp(DELIVERY.c.created_at, now)
            message = result.message[:500]
            if result.status == "sent":
                status = DeliveryStatus.SENT.value
                held = claimed.article_ids if result.article_ids is None else result.article_ids
                sql.many(
                    "UPDATE delivery SET status = ?, smtp_code = ?, smtp_message = ?, "
                    "message_id = ?, sent_at = ?, updated_at = ?, next_attempt_at = NULL, "
                    "article_ids = ? WHERE id = ?",
                    [
                        (
                            status,
                            result.code,
                            message,
                            result.message_id,
                            stamp,
                            stamp,
                            sql.json(list(held)),
                            claimed.id,
                        )
                    ],
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
                        None if next_at is None else sql.stamp(DELIVERY.c.created_at, next_at),
                        stamp,
                        claimed.id,
                    )
                ],
            )
            return status


def _json(value: object) -> list[int]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value) if isinstance(value, list) else []


def _day(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _moment(sql: DriverSql, value: object) -> datetime:
    result = DELIVERY.c.created_at.type.dialect_impl(sql.connection.dialect).result_processor(
        sql.connection.dialect, None
    )
    moment = result(value) if result is not None else value
    assert isinstance(moment, datetime)
    return moment
