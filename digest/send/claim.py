"""Claiming deliveries for sending: every way a row moves to `sending`, and back.

`claim` takes a list's rows for `digest send` and the scheduler (under the list's lock);
`claim_leased` takes rows for `digest worker` processes (PostgreSQL, `FOR UPDATE SKIP
LOCKED`, under a lease that `renew_lease` extends while a batch is sent). `release_orphans`
and `requeue` give rows back to the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY
from digest.editions.states import sendable
from digest.send.claimed import CLAIMED_ROWS, Claimed, sort_claimed

QUEUED, SENDING = DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value
FAILED_TEMPORARY = DeliveryStatus.FAILED_TEMPORARY.value


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
        head = CLAIMED_ROWS + f" WHERE d.list_id = {m} AND d.status = {m} AND {sendable('e')}"
        order = " ORDER BY d.next_attempt_at, d.id LIMIT {}"
        rows = list(
            connection.exec_driver_sql(
                head + date_filter + order.format(int(limit)), (list_id, QUEUED, *on_date)
            )
        )
        if len(rows) < limit:
            rows += connection.exec_driver_sql(
                head
                + f" AND d.next_attempt_at <= {m} AND d.updated_at < {m}"
                + date_filter
                + order.format(int(limit) - len(rows)),
                # updated_at: a retry is never taken again by the run that just failed it
                (list_id, FAILED_TEMPORARY, stamp, stamp, *on_date),
            ).all()
        claimed, gone = sort_claimed(sql, rows, stamp, attempts_added=1)
        sql.many(
            "UPDATE delivery SET status = ?, smtp_message = ?, updated_at = ? WHERE id = ? "
            "AND status IN (?, ?)",
            [(*g, QUEUED, FAILED_TEMPORARY) for g in gone],
        )
        taken = _take(sql, [c.id for c in claimed], stamp)
    return [c for c in claimed if c.id in taken], len(rows), len(gone)


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
        (SENDING, stamp, *ids, QUEUED, FAILED_TEMPORARY, stamp, stamp),
    ).all()
    return {row[0] for row in rows}


def claim_leased(
    engine: Engine,
    *,
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    on_skipped: Callable[[int], None] | None = None,
) -> list[Claimed]:
    """Take up to `limit` rows: queued, retries now due, and `sending` rows whose lease ran out.

    Two workers never wait for, nor take, the same rows (`FOR UPDATE SKIP LOCKED`); the rows
    move to `sending` with `claimed_by = worker` and `lease_until = now + lease` in the same
    transaction. Rows whose subscription was withdrawn or whose address was suppressed since
    planning are marked skipped here, never sent. An empty list means nothing is claimable:
    a batch whose rows were all skipped is followed by the next one. `on_skipped` is told how
    many rows each claim skipped.
    """
    return claim_past_skips(
        lambda: _claim_leased_once(engine, worker=worker, now=now, limit=limit, lease=lease),
        on_skipped,
    )


def _claim_leased_once(
    engine: Engine, *, worker: str, now: datetime, limit: int, lease: timedelta
) -> tuple[list[Claimed], int, int]:
    """One claim in one transaction: what was claimed, how many rows it took, and how many
    of them it skipped."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        m = sql.mark
        stamp = sql.stamp(DELIVERY.c.created_at, now)
        until = sql.stamp(DELIVERY.c.created_at, now + lease)
        lock = " FOR UPDATE OF d SKIP LOCKED" if connection.dialect.name == "postgresql" else ""
        ids = [
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT d.id FROM delivery d JOIN edition e ON e.id = d.edition_id "
                f"WHERE {sendable('e')} AND (d.status = {m} "
                f"OR (d.status = {m} AND d.next_attempt_at <= {m}) "
                f"OR (d.status = {m} AND d.lease_until < {m})) "
                f"ORDER BY d.id LIMIT {int(limit)}{lock}",
                (QUEUED, FAILED_TEMPORARY, stamp, SENDING, stamp),
            )
        ]
        if not ids:
            return [], 0, 0
        marks = sql.marks(len(ids))
        connection.exec_driver_sql(
            f"UPDATE delivery SET status = {m}, attempts = attempts + 1, updated_at = {m}, "
            f"claimed_by = {m}, lease_until = {m} WHERE id IN ({marks})",
            (SENDING, stamp, worker, until, *ids),
        )
        rows = connection.exec_driver_sql(
            f"{CLAIMED_ROWS} WHERE d.id IN ({marks}) ORDER BY d.id", tuple(ids)
        ).all()
        claimed, gone = sort_claimed(sql, rows, stamp, attempts_added=0)  # counted above
        sql.many(
            "UPDATE delivery SET status = ?, smtp_message = ?, updated_at = ?, "
            "lease_until = NULL WHERE id = ?",
            gone,
        )
    return claimed, len(ids), len(gone)


def renew_lease(
    engine: Engine, *, worker: str, ids: Sequence[int], now: datetime, lease: timedelta
) -> int:
    """Extend to `now + lease` the lease of those of `ids` that `worker` still holds in `sending`.

    Rows already recorded, or taken by another worker after the lease ran out, are left
    alone. Returns how many rows were renewed."""
    if not ids:
        return 0
    with engine.begin() as connection:
        sql = DriverSql(connection)
        m = sql.mark
        result = connection.exec_driver_sql(
            f"UPDATE delivery SET lease_until = {m} WHERE claimed_by = {m} AND status = {m} "
            f"AND id IN ({sql.marks(len(ids))})",
            (sql.stamp(DELIVERY.c.created_at, now + lease), worker, SENDING, *ids),
        )
        return int(result.rowcount or 0)


def release_orphans(engine: Engine, list_id: int | None = None) -> int:
    """Put back in the queue what a dead process left in `sending` (call under the send lock).

    Rows under a worker's lease are not touched: `digest worker` reclaims those itself once
    the lease has run out (`claim_leased`)."""
    with engine.begin() as connection:
        sql = DriverSql(connection)
        where = "status = ? AND lease_until IS NULL" + (
            " AND list_id = ?" if list_id is not None else ""
        )
        params: tuple[object, ...] = (SENDING,)
        params += (list_id,) if list_id is not None else ()
        result = connection.exec_driver_sql(
            f"UPDATE delivery SET status = {sql.mark} WHERE " + where.replace("?", sql.mark),
            (QUEUED, *params),
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
            [(QUEUED, i, SENDING) for i in ids],
        )
