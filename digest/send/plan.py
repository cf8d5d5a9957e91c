"""Planning: one Delivery row per due subscription, written before any SMTP transaction.

A row is written `queued` (or `skipped`, with why) in its edition, which planning moves to
`sending` (`digest.editions.states.start_sending`). The unique key (edition, subscriber)
makes planning twice a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY
from digest.editions.states import start_sending
from digest.selection.due import Selection
from digest.selection.window import Due

# Smtp_message of a digest not sent because the scheduler came back too long after its hour.
LATE_NOTE = "skipped: past the lateness limit (the scheduler was not running at its hour)"


@dataclass(frozen=True)
class PlanReport:
    queued: int
    skipped_empty: int
    already_planned: int
    skipped_late: int = 0


def plan(engine: Engine, selection: Selection, now: datetime) -> PlanReport:
    """Write one Delivery per due subscription: queued, or skipped when it has no articles."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        dates = {d.local_date for s in selection.segments for d in s.recipients}
        dates |= {d.local_date for d in selection.empty}
        dates |= {d.local_date for d in selection.late}
        waiting = {d.local_date for d in selection.waiting} - dates
        editions = start_sending(connection, selection.list_id, sorted(dates), now, sorted(waiting))
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
