"""A claimed delivery: the row taken for sending, read back with what builds its message."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Dialect

from digest.db.bulk import DriverSql, driver_date
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY
from subscribers.models import SubscriptionStatus


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


# What a claim reads of its rows (then `WHERE ...`): what `sort_claimed` takes.
CLAIMED_ROWS = (
    "SELECT d.id, d.edition_id, d.list_id, d.subscriber_id, s.email, s.name, d.locale, "
    "e.local_date, d.topic_ids, d.article_ids, d.attempts, d.created_at, u.status, "
    "p.id FROM delivery d JOIN edition e ON e.id = d.edition_id "
    "JOIN subscriber s ON s.id = d.subscriber_id "
    "LEFT JOIN subscription u ON u.subscriber_id = d.subscriber_id "
    "AND u.list_id = d.list_id LEFT JOIN suppression p ON p.email_key = s.email_key"
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
                driver_date(day),
                _ids(topics),
                _ids(articles),
                attempts + attempts_added,
                _moment(sql, created_at),
            )
        )
    return claimed, gone


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


def _moment(sql: DriverSql, value: object) -> datetime:
    result = _moment_reader(sql.connection.dialect)
    moment = result(value) if result is not None else value
    assert isinstance(moment, datetime)
    return moment


@functools.lru_cache(maxsize=8)
def _moment_reader(dialect: Dialect) -> Callable[[Any], Any] | None:
    """How the driver's DATETIME values become datetimes (looked up once, not per row)."""
    return DELIVERY.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)
