"""What selection reads from the database: a constant number of queries per list (or per
batch of its subscribers), whatever its size.

Active subscriptions, their chosen topics, their previous cutoffs, the candidate articles
with their topics, and which of those each subscriber already got.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from digest.catalog.articles import VIEW_COLUMNS, article_topic_ids, article_view
from digest.db.bulk import driver_date
from digest.db.models import DeliveryStatus
from digest.db.tables import ARTICLE, DELIVERY, EDITION
from digest.selection.ranking import Candidate
from subscribers.models import SubscriptionStatus
from subscribers.tables import LIST_TOPIC, SUBSCRIBER, SUBSCRIPTION, SUBSCRIPTION_TOPIC, SUPPRESSION

# Subscription id, subscriber id, email, name, locale, time zone, send hour (`active`).
ActiveRows = Iterable[tuple[int, int, str, str, str, str, int | None]]


@dataclass(frozen=True)
class Span:
    """One batch of `due_in_batches`: the subscribers whose id is in (after, upto] (`upto`
    None: every one above `after`); `first` and `last` bound their subscriptions' ids."""

    after: int
    upto: int | None
    first: int | None = None
    last: int | None = None


def _subscribers_in(column: ColumnElement[int], span: Span | None) -> list[ColumnElement[bool]]:
    """Conditions keeping a batch's subscriber ids in `column` (none: every subscriber).

    Explicit ranges, never a join to the batch's subscriptions: PostgreSQL then walks the
    (list_id, subscriber_id) indexes over the range, whatever its statistics say (the
    delivery table grows by the earlier batches while its statistics still say empty)."""
    if span is None:
        return []
    bounds = [column > span.after]
    return bounds if span.upto is None else [*bounds, column <= span.upto]


def _subscriptions_in(column: ColumnElement[int], span: Span | None) -> list[ColumnElement[bool]]:
    """Conditions keeping `column` within the batch's subscription ids (none: no batch)."""
    if span is None or span.first is None or span.last is None:
        return []
    return [column >= span.first, column <= span.last]


def batch_end(connection: Connection, list_id: int, after: int, size: int) -> int | None:
    """The subscriber id that ends the batch starting above `after`: None for the last one."""
    found = connection.execute(
        select(SUBSCRIPTION.c.subscriber_id)
        .where(SUBSCRIPTION.c.list_id == list_id, SUBSCRIPTION.c.subscriber_id > after)
        .order_by(SUBSCRIPTION.c.subscriber_id)
        .offset(size - 1)
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def offered(connection: Connection, list_id: int) -> tuple[int, ...]:
    """The topic ids the list offers, in its order (none: it offers every topic)."""
    rows = connection.execute(
        select(LIST_TOPIC.c.topic_id)
        .where(LIST_TOPIC.c.list_id == list_id)
        .order_by(LIST_TOPIC.c.position)
    )
    return tuple(rows.scalars())


def active(connection: Connection, list_id: int, span: Span | None = None) -> ActiveRows:
    """Active subscriptions of the list whose address is not suppressed, in id order (those
    of one batch's subscribers with `span`)."""
    query = (
        select(
            SUBSCRIPTION.c.id,
            SUBSCRIBER.c.id,
            SUBSCRIBER.c.email,
            SUBSCRIBER.c.name,
            SUBSCRIBER.c.locale,
            SUBSCRIBER.c.timezone,
            SUBSCRIPTION.c.send_hour,
        )
        .join(SUBSCRIBER, SUBSCRIBER.c.id == SUBSCRIPTION.c.subscriber_id)
        .outerjoin(SUPPRESSION, SUPPRESSION.c.email_key == SUBSCRIBER.c.email_key)
        .where(
            SUBSCRIPTION.c.list_id == list_id,
            SUBSCRIPTION.c.status == SubscriptionStatus.ACTIVE.value,
            SUPPRESSION.c.id.is_(None),
        )
        .order_by(SUBSCRIPTION.c.id)
    )
    if span is None:
        return connection.execute(query)
    # A batch: fetched at once (cheaper per row); both sides of the join walk their own
    # index over the range.
    query = query.where(
        *_subscribers_in(SUBSCRIPTION.c.subscriber_id, span),
        *_subscribers_in(SUBSCRIBER.c.id, span),
    )
    return cast(ActiveRows, connection.execute(query).all())


def chosen_topics(
    connection: Connection, list_id: int, span: Span | None = None
) -> dict[int, tuple[int, ...]]:
    """subscription id -> the topic ids its subscriber chose, in their order."""
    rows = connection.execute(
        select(SUBSCRIPTION_TOPIC.c.subscription_id, SUBSCRIPTION_TOPIC.c.topic_id)
        .join(SUBSCRIPTION, SUBSCRIPTION.c.id == SUBSCRIPTION_TOPIC.c.subscription_id)
        .where(
            SUBSCRIPTION.c.list_id == list_id,
            *_subscribers_in(SUBSCRIPTION.c.subscriber_id, span),
            *_subscriptions_in(SUBSCRIPTION_TOPIC.c.subscription_id, span),
        )
        .order_by(SUBSCRIPTION_TOPIC.c.subscription_id, SUBSCRIPTION_TOPIC.c.position)
    )
    chosen: dict[int, list[int]] = defaultdict(list)
    for subscription_id, topic_id in rows.all():
        chosen[subscription_id].append(topic_id)
    return {k: tuple(v) for k, v in chosen.items()}


def last_deliveries(
    connection: Connection, list_id: int, span: Span | None = None
) -> dict[int, tuple[datetime | None, date | None]]:
    """subscriber id -> (cutoff of their latest digest, its local date)."""
    query = (
        select(
            DELIVERY.c.subscriber_id,
            func.max(DELIVERY.c.window_end),
            func.max(EDITION.c.local_date),
        )
        .join(EDITION, EDITION.c.id == DELIVERY.c.edition_id)
        .where(DELIVERY.c.list_id == list_id, *_subscribers_in(DELIVERY.c.subscriber_id, span))
        .group_by(DELIVERY.c.subscriber_id)
    )
    result: dict[int, tuple[datetime | None, date | None]] = {}
    for subscriber_id, cutoff, last_day in connection.execute(query).all():
        day = None if last_day is None else driver_date(last_day)
        result[subscriber_id] = (_aware(cutoff), day)
    return result


def previous_cutoff(connection: Connection, list_id: int, subscriber_id: int) -> datetime | None:
    """Where the subscriber's next digest starts: the cutoff of their latest one."""
    cutoff = connection.execute(
        select(func.max(DELIVERY.c.window_end)).where(
            DELIVERY.c.list_id == list_id, DELIVERY.c.subscriber_id == subscriber_id
        )
    ).scalar()
    return _aware(cutoff)


def planned_on(connection: Connection, list_id: int, day: date) -> set[int]:
    """Ids of the subscribers whose digest of `day` is already in the outbox."""
    return set(
        connection.execute(
            select(DELIVERY.c.subscriber_id)
            .join(EDITION, EDITION.c.id == DELIVERY.c.edition_id)
            .where(EDITION.c.list_id == list_id, EDITION.c.local_date == day)
        ).scalars()
    )


def candidates(
    connection: Connection, start: datetime, end: datetime, pinned: Iterable[int] = ()
) -> list[Candidate]:
    """Every article ingested in (start, end] that has a topic, with its topics (and the
    pinned articles, wherever their ingestion time)."""
    window = and_(ARTICLE.c.ingested_at > start, ARTICLE.c.ingested_at <= end)
    extra = sorted(pinned)
    if extra:
        window = or_(window, ARTICLE.c.id.in_(extra))
    tags = article_topic_ids(connection, window)
    found = []
    for row in connection.execute(select(*VIEW_COLUMNS, ARTICLE.c.ingested_at).where(window)):
        if row.id not in tags:
            continue
        ingested, published = row.ingested_at, row.published_at
        # Recency: the feed's date, unless it claims to be newer than our own ingestion.
        recency = min(published, ingested) if published is not None else ingested
        found.append(
            Candidate(row.id, ingested, recency, frozenset(tags[row.id]), article_view(row))
        )
    return found


def already_sent(
    connection: Connection,
    list_id: int,
    among: Sequence[Candidate],
    span: Span | None = None,
) -> dict[int, set[int]]:
    """subscriber id -> ids of the articles `among` already in one of their digests."""
    if not among:
        return {}
    ids = {c.id for c in among}
    since = min(c.ingested_at for c in among)
    query = select(DELIVERY.c.subscriber_id, DELIVERY.c.article_ids).where(
        DELIVERY.c.list_id == list_id,
        DELIVERY.c.created_at >= since,
        DELIVERY.c.status != DeliveryStatus.SKIPPED.value,
        *_subscribers_in(DELIVERY.c.subscriber_id, span),
    )
    sent: dict[int, set[int]] = defaultdict(set)
    for subscriber_id, article_ids in connection.execute(query).all():
        overlap = ids.intersection(article_ids or ())
        if overlap:
            sent[subscriber_id] |= overlap
    return sent


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite's MAX() returns the stored text
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
