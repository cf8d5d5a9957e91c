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
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus, EditionStatus
from digest.db.tables import DELIVERY
from digest.errors import DigestError
from digest.selection.due import Due, Selection
from digest.send.outcome import RetryPolicy
from subscribers.models import SubscriptionStatus, SuppressionReason

logger = logging.getLogger(__name__)

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
        rows = _Rows(sql, editions)
        for planned in selection.segments:
            rows.add(
                planned.recipients, DeliveryStatus.QUEUED, planned.topic_ids, planned.article_ids
            )
        rows.add(selection.empty, DeliveryStatus.SKIPPED, None, (), "no new articles")
        rows.add(selection.late, DeliveryStatus.SKIPPED, None, (), LATE_NOTE)
        inserted = _insert(sql, selection.list_id, sql.stamp(DELIVERY.c.created_at, now), rows)
    empty = len(selection.empty)
    queued = sum(len(s.recipients) for s in selection.segments)
    return PlanReport(
        queued=min(queued, inserted),
        skipped_empty=empty,
        already_planned=len(rows) - inserted,
        skipped_late=len(selection.late),
    )


class _Rows:
    """A batch's delivery rows: per row its subscriber and its "kind", the values it shares
    with many others (edition, status, window, locale, topics, articles, note).

    A batch of 20,000 rows holds a few hundred kinds (segments times windows): each kind's
    values are converted, sent and parsed once, not once per row."""

    def __init__(self, sql: DriverSql, editions: dict[date, int]) -> None:
        self.sql = sql
        self.editions = editions
        self.subscriber: list[int] = []
        self.kind: list[int] = []  # index into self.kinds
        self.kinds: list[tuple[Any, ...]] = []
        self._kinds: dict[tuple[object, ...], int] = {}
        self._texts: dict[tuple[int, ...], str] = {}

    def __len__(self) -> int:
        return len(self.subscriber)

    def add(
        self,
        recipients: Sequence[Due],
        status: str,
        topic_ids: Sequence[int] | None,  # None: each recipient's own
        article_ids: Sequence[int],
        note: str = "",
    ) -> None:
        known, kind = self._kinds, self._kind
        shared = (status, None if topic_ids is None else tuple(topic_ids), tuple(article_ids), note)
        for d in recipients:
            start, end = d.window_start, d.window_end
            # tzinfo too: equal instants in two zones may be stored apart
            key: tuple[object, ...] = (*shared, d.local_date, start, start.tzinfo, end)
            key += (end.tzinfo, d.locale)
            if topic_ids is None:
                key += (d.topic_ids,)
            found = known.get(key)
            if found is None:
                found = known[key] = kind(d, status, topic_ids, article_ids, note)
            self.kind.append(found)
        self.subscriber += [d.subscriber_id for d in recipients]

    def rows(self) -> list[tuple[Any, ...]]:
        """(edition, subscriber, status, start, end, locale, topics, articles, note) each."""
        kinds = self.kinds
        return [
            (kinds[k][0], s, *kinds[k][1:]) for s, k in zip(self.subscriber, self.kind, strict=True)
        ]

    def _kind(
        self,
        due: Due,
        status: str,
        topic_ids: Sequence[int] | None,
        article_ids: Sequence[int],
        note: str,
    ) -> int:
        stamp = self.sql.stamp  # window_start and window_end have the same column type
        self.kinds.append(
            (
                self.editions[due.local_date],
                str(status),
                stamp(DELIVERY.c.window_start, due.window_start),
                stamp(DELIVERY.c.window_start, due.window_end),
                due.locale,
                self._json(due.topic_ids if topic_ids is None else topic_ids),
                self._json(article_ids),
                note,
            )
        )
        return len(self.kinds) - 1

    def _json(self, ids: Sequence[int]) -> str:
        key = tuple(ids)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = self.sql.json(list(key))
        return found


@dataclass
class ListPlan:
    """What planning a whole list batch by batch did (`plan_batches`)."""

    due: int = 0
    queued: int = 0
    skipped_empty: int = 0
    already_planned: int = 0
    skipped_late: int = 0
    waiting: int = 0
    segments: int = 0  # distinct ones: a segment may span batches
    late: list[Due] = field(default_factory=list)  # the first few skipped as late, for the log


def plan_batches(
    engine: Engine, selections: Iterable[Selection], now: datetime, *, keep_late: int = 10
) -> ListPlan:
    """`plan` each batch of `select.due_in_batches` as it comes, each in its own transaction.

    Memory stays that of a batch or two whatever the list's size; a crash between batches
    leaves the earlier ones planned, and the next run plans the rest (planning twice is a
    no-op). Workers may start sending the first batches while the next are planned.

    A second thread writes each batch while the next one is selected, so the database and
    this process work at the same time (on a list of a million, each takes about as long).
    """
    total = ListPlan()
    keys: set[str] = set()

    def add(selection: Selection, report: PlanReport) -> None:
        total.due += selection.due
        total.queued += report.queued
        total.skipped_empty += report.skipped_empty
        total.already_planned += report.already_planned
        total.skipped_late += report.skipped_late
        total.waiting += len(selection.waiting)
        keys.update(s.key for s in selection.segments)
        total.late += selection.late[: max(0, keep_late - len(total.late))]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan") as writer:
        written: tuple[Selection, Future[PlanReport]] | None = None
        for selection in selections:  # the next batch is selected while one is written
            if written is not None:
                add(written[0], written[1].result())
            written = (selection, writer.submit(plan, engine, selection, now))
        if written is not None:
            add(written[0], written[1].result())
    total.segments = len(keys)
    return total


_COLUMNS = (
    "edition_id, list_id, subscriber_id, status, attempts, next_attempt_at, window_start, "
    "window_end, locale, topic_ids, article_ids, created_at, updated_at, smtp_message"
)


def _insert(sql: DriverSql, list_id: int, stamp: object, rows: _Rows) -> int:
    """Insert the planned `rows` unless already there; returns how many were new."""
    if not rows:
        return 0
    connection = sql.connection
    if connection.dialect.name == "postgresql":
        # One statement per batch: the rows as two int arrays (subscriber, kind) and each
        # kind's values once, so a batch sends and parses a few hundred values, not nine a row.
        kinds = list(zip(*rows.kinds, strict=True))
        result = connection.exec_driver_sql(
            "WITH k AS MATERIALIZED (SELECT n - 1 AS k, e, st, ws, we, lo, ti::json AS ti, "
            "ai::json AS ai, sm FROM unnest(%s::int[], %s::text[], %s::timestamptz[], "
            "%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "WITH ORDINALITY AS v(e, st, ws, we, lo, ti, ai, sm, n)) "
            f"INSERT INTO delivery ({_COLUMNS}) "
            "SELECT k.e, %s, r.s, k.st, 0, %s, k.ws, k.we, k.lo, k.ti, k.ai, %s, %s, k.sm "
            "FROM unnest(%s::int[], %s::int[]) WITH ORDINALITY AS r(s, k, n) JOIN k USING (k) "
            "ORDER BY r.n "
            "ON CONFLICT (edition_id, subscriber_id) DO NOTHING",
            (
                *(list(column) for column in kinds),
                list_id,
                stamp,
                stamp,
                stamp,
                _array(map(str, rows.subscriber)),
                _array(map(str, rows.kind)),
            ),
        )
        return int(result.rowcount)
    changes = "SELECT total_changes()"  # per connection: what this INSERT really added
    before = int(connection.exec_driver_sql(changes).scalar_one())
    sql.many(
        f"INSERT INTO delivery ({_COLUMNS}) VALUES ({sql.marks(14)}) "
        "ON CONFLICT (edition_id, subscriber_id) DO NOTHING",
        [
            (e, list_id, s, st, 0, stamp, ws, we, lo, ti, ai, stamp, stamp, sm)
            for e, s, st, ws, we, lo, ti, ai, sm in rows.rows()
        ],
    )
    return int(connection.exec_driver_sql(changes).scalar_one()) - before


def _array(elements: Iterable[str]) -> str:
    """A PostgreSQL array literal (the statement casts it): one join, where the driver's list
    adapter costs microseconds an element."""
    return "{" + ",".join(elements) + "}"


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


def release_orphans(engine: Engine, list_id: int | None = None) -> int:
    """Put back in the queue what a dead process left in `sending` (call under the send lock).

    Rows under a worker's lease are not touched: `digest worker` reclaims those itself once
    the lease has run out (`digest.send.worker`)."""
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
    engine: Engine,
    *,
    list_id: int,
    now: datetime,
    limit: int,
    edition_date: date | None = None,
    on_skipped: Callable[[int], None] | None = None,
) -> list[Claimed]:
    """Take up to `limit` sendable deliveries of the list: queued ones and retries now due.

    Rows whose subscription was withdrawn or whose address was suppressed since planning
    are skipped here, so they are never sent. An empty list means nothing is left to claim:
    a batch whose rows were all skipped (or all taken by a racing sender) is followed by
    the next one, not mistaken for the end of the queue. `on_skipped` is told how many
    rows each claim skipped.
    """
    return claim_past_skips(
        lambda: _claim_once(
            engine, list_id=list_id, now=now, limit=limit, edition_date=edition_date
        ),
        on_skipped,
    )


def claim_past_skips(
    claim_once: Callable[[], tuple[list[Claimed], int, int]],
    on_skipped: Callable[[int], None] | None,
) -> list[Claimed]:
    """Claim until something is claimed or nothing was there: `claim_once` gives (claimed,
    rows looked at, rows skipped), and a claim that only skipped rows is not the end."""
    while True:
        claimed, seen, skipped = claim_once()
        if skipped and on_skipped is not None:
            on_skipped(skipped)
        if claimed or not seen:
            return claimed


def _claim_once(
    engine: Engine, *, list_id: int, now: datetime, limit: int, edition_date: date | None
) -> tuple[list[Claimed], int, int]:
    """One claim in one transaction: what was claimed, how many rows it looked at, and how
    many of them it skipped."""
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
            CLAIMED_ROWS
            + f" WHERE d.list_id = {m} AND d.status = {m} AND e.status <> '{EditionStatus.HELD}'"
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
        claimed, gone = sort_claimed(sql, rows, stamp, attempts_added=1)
        sql.many(
            "UPDATE delivery SET status = ?, smtp_message = ?, updated_at = ? WHERE id = ? "
            "AND status IN (?, ?)",
            [
                (*g, DeliveryStatus.QUEUED.value, DeliveryStatus.FAILED_TEMPORARY.value)
                for g in gone
            ],
        )
        taken = _take(sql, [c.id for c in claimed], stamp)
    return [c for c in claimed if c.id in taken], len(rows), len(gone)


# What a claim reads of its rows (then `WHERE ...`): what `sort_claimed` takes.
CLAIMED_ROWS = (
    "SELECT d.id, d.edition_id, d.list_id, d.subscriber_id, s.email, s.name, d.locale, "
    "e.local_date, d.topic_ids, d.article_ids, d.attempts, d.created_at, u.status, "
    "p.id FROM delivery d JOIN edition e ON e.id = d.edition_id "
    "JOIN subscriber s ON s.id = d.subscriber_id "
    "LEFT JOIN subscription u ON u.subscriber_id = d.subscriber_id "
    "AND u.list_id = d.list_id LEFT JOIN suppression p ON p.email = s.email"
)


def sort_claimed(
    sql: DriverSql, rows: Iterable[Sequence[Any]], stamp: object, *, attempts_added: int
) -> tuple[list[Claimed], list[tuple[object, ...]]]:
    """Rows read with `CLAIMED_ROWS`: those to send, and (skipped, reason, stamp, id) for
    those whose subscription was withdrawn or whose address was suppressed since planning.

    `attempts_added`: what the claim adds to the stored count (0 if it has already)."""
    claimed: list[Claimed] = []
    gone: list[tuple[object, ...]] = []
    for row in rows:
        (did, eid, lid, sid, email, name, locale, day, topics, articles, attempts) = row[:11]
        created_at, sub_status, suppressed = row[11:]
        if suppressed is not None or sub_status != SubscriptionStatus.ACTIVE:
            reason = "suppressed before sending" if suppressed else "unsubscribed before sending"
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
                _day(day),
                _ids(topics),
                _ids(articles),
                attempts + attempts_added,
                _moment(sql, created_at),
            )
        )
    return claimed, gone


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


class OutcomeNotRecorded(DigestError):
    """The database stayed unreachable while an outcome waited to be written."""


class Recorder:
    """Writes each outcome in its own small transaction, right after its SMTP transaction.

    Inside `with recorder.connected():` every outcome reuses one connection, still with one
    commit each: checking a pooled connection out and back in per message cost more than the
    UPDATE and its commit (send bench: ~450 µs a message, ~130 µs reused).

    The database may be restarting (or failing over) when a message has just gone out: the
    outcome is then retried on a new connection for up to `patience` seconds (the write is
    idempotent, so a commit whose answer was lost does no harm). Past that it raises
    OutcomeNotRecorded and the row stays `sending`: a worker's lease runs out and the row
    is claimed again (`release_orphans` does the same for `digest send`), so the message
    may go twice but is never lost, nor ever marked unsent.
    """

    # Seconds an outcome is retried while the database is unreachable: a restart or a
    # failover takes a few; an instance may set its own.
    patience = 30.0

    def __init__(self, engine: Engine, policy: RetryPolicy) -> None:
        self.engine = engine
        self.policy = policy
        self._connection: Connection | None = None
        self._held = False
        self._gave_up = False
        self._to_db: Callable[[datetime], Any] | None = None

    @contextmanager
    def connected(self) -> Iterator[None]:
        """Keep one connection for the outcomes recorded inside (no transaction stays open)."""
        if self._held:
            yield
            return
        self._held = True
        self._gave_up = False
        try:
            yield
        finally:
            self._held = False
            self._drop()

    def record(self, claimed: Claimed, result: Result, now: datetime) -> str:
        """Store the outcome and commit it; returns the delivery's new status.

        Raises OutcomeNotRecorded when the database stays unreachable for `patience`
        seconds; after that, at once until the next `connected()` block (the rest of the
        batch would only wait for a database that is not back).
        """
        deadline = time.monotonic() + self.patience
        pause = 0.05
        while True:
            try:
                return self._commit(claimed, result, now)
            except (OperationalError, InterfaceError) as exc:  # PEP 249: unavailable, cut off
                self._drop()
                if self._gave_up or time.monotonic() + pause > deadline:
                    self._gave_up = True
                    raise OutcomeNotRecorded(
                        f"delivery {claimed.id} ({claimed.email}): outcome {result.status!r} "
                        f"not recorded, the database stayed unreachable for {self.patience:g}s; "
                        "the row stays `sending` and is sent again later (after its lease, or "
                        f"at the next `digest send`): {exc.orig}"
                    ) from exc
                logger.warning(
                    "delivery %s: cannot record its outcome yet, retrying: %s", claimed.id, exc.orig
                )
                time.sleep(pause)  # nothing else can be recorded meanwhile either
                pause = min(pause * 2, 1.0)

    def _commit(self, claimed: Claimed, result: Result, now: datetime) -> str:
        if not self._held:
            with self.engine.begin() as fresh:
                return self._write(fresh, claimed, result, now)
        if self._connection is None:
            self._connection = self.engine.connect()
        connection = self._connection
        try:
            status = self._write(connection, claimed, result, now)
            connection.commit()
        except BaseException:
            with suppress(SQLAlchemyError):  # a connection cut off cannot even roll back
                connection.rollback()
            raise
        return status

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(SQLAlchemyError):
                connection.close()

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
