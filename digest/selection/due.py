"""Selection: who is due now on a list, which new articles each gets, grouped into segments.

A constant number of queries per list, whatever its size: subscriptions, their topics,
their previous cutoffs, the candidate articles with their topics, and what was already
sent (planning, `due_in_batches`, runs them per batch of subscribers, in bounded memory).
Everything else is computed in memory, once per group of subscribers who share topics,
language, date and window (in steady state, a handful of groups per list).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, or_, select

from digest.db.models import DeliveryStatus
from digest.db.tables import (
    ARTICLE,
    ARTICLE_TOPIC,
    DELIVERY,
    EDITION,
    LIST_TOPIC,
    SUBSCRIBER,
    SUBSCRIPTION,
    SUBSCRIPTION_TOPIC,
    SUPPRESSION,
    TOPIC,
)
from digest.editions.controls import EditionControls, Editorial
from digest.render.data import ArticleView, Segment, TopicView
from subscribers.models import (
    Cadence,
    MailingList,
    SubscriptionStatus,
)

# Subscription id, subscriber id, email, name, locale, time zone, send hour (`_active`).
ActiveRows = Iterable[tuple[int, int, str, str, str, str, int | None]]
# Subscriptions `due_in_batches` reads and plans at a time: few round trips per list, and a
# memory use that does not grow with the list.
BATCH = 20_000
FIRST_WINDOW = {Cadence.DAILY.value: timedelta(days=1), Cadence.WEEKLY.value: timedelta(days=7)}


@dataclass(frozen=True)
class Due:
    """A subscription whose digest is due: who, for which local date, over which window."""

    subscription_id: int
    subscriber_id: int
    email: str
    name: str
    locale: str
    topic_ids: tuple[int, ...]
    local_date: date
    window_start: datetime
    window_end: datetime


@dataclass
class PlannedSegment:
    """Recipients who get the same digest; it is compiled once for all of them."""

    key: str
    segment: Segment
    topic_ids: tuple[int, ...]
    article_ids: tuple[int, ...]
    recipients: list[Due] = field(default_factory=list)


@dataclass
class Selection:
    list_id: int
    list_slug: str
    segments: list[PlannedSegment]
    empty: list[Due]  # due, but nothing new: no email, the window still advances
    # Owed, but further past its hour than the lateness limit (the scheduler was down): the
    # day is skipped; the window does not advance (window_end == window_start).
    late: list[Due] = field(default_factory=list)
    # Due, but their edition is held or awaits approval: nothing is planned for them yet.
    waiting: list[Due] = field(default_factory=list)

    @property
    def due(self) -> int:
        return sum(len(s.recipients) for s in self.segments) + len(self.empty)


@dataclass(frozen=True)
class _Candidate:
    id: int
    ingested_at: datetime
    recency: datetime
    topic_ids: frozenset[int]
    view: ArticleView


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Cached: a list's subscribers share a few (time zone, hour) pairs, and planning asks for each
# of a million subscribers.
@lru_cache(maxsize=4096)
def local_due_date(now: datetime, timezone: str, hour: int, day: date | None = None) -> date | None:
    """The local date whose digest is due at `now`, or None when the send hour has not come.

    `day` asks for one date's edition (catching up); otherwise the subscriber's local today.
    """
    local_day = day or now.astimezone(_zone(timezone)).date()
    return local_day if due_moment(local_day, timezone, hour) <= now else None


@lru_cache(maxsize=4096)
def due_moment(day: date, timezone: str, hour: int) -> datetime:
    """When `day`'s digest falls due: `hour`:00 local time (in a DST gap: standard time)."""
    return datetime.combine(day, time(hour), tzinfo=_zone(timezone))


def select_due(
    connection: Connection,
    mailing_list: MailingList,
    *,
    now: datetime,
    max_articles: int,
    day: date | None = None,
    max_lateness: timedelta | None = None,
    editorial: Editorial | None = None,
) -> Selection:
    """Everything `digest send` needs to plan the list's digests due at `now`.

    With `max_lateness` (the scheduler catching up after downtime), a subscriber's latest
    owed digest is today's once their hour has come, else yesterday's if they have had one
    before (downtime over their local midnight); it is due while at most `max_lateness` has
    passed since its hour, and past that it goes to `Selection.late` (a first digest just
    waits for the next hour instead).

    With `editorial`, subscribers whose edition is held or awaits approval go to
    `Selection.waiting`; lateness then counts from the edition's approval or release.

    The whole list at once: `due_in_batches` gives the same answer in bounded memory.
    """
    assert mailing_list.id is not None
    rows = _active(connection, mailing_list.id)
    return _select(
        connection,
        mailing_list,
        rows,
        None,
        _topics(connection),
        now=now,
        max_articles=max_articles,
        day=day,
        max_lateness=max_lateness,
        editorial=editorial,
    )


def due_in_batches(
    engine: Engine,
    mailing_list: MailingList,
    *,
    now: datetime,
    max_articles: int,
    day: date | None = None,
    max_lateness: timedelta | None = None,
    editorial: Editorial | None = None,
    batch_size: int = BATCH,
) -> Iterator[Selection]:
    """`select_due`, `batch_size` subscriptions at a time (in subscriber id order, each batch
    read on a connection of its own): memory stays that of one batch whatever the list's size.

    Every query of a batch is bounded to its range of subscriber ids, which the delivery
    table's (list_id, subscriber_id) index serves directly: what the earlier batches just
    planned is never read again, even before PostgreSQL's statistics know of those rows.
    Together the batches are `select_due`'s answer; a segment that two batches both hold
    has the same key in each.
    """
    assert mailing_list.id is not None and batch_size > 0
    topics: dict[int, TopicView] | None = None
    after = 0
    while True:
        with engine.connect() as connection:
            topics = _topics(connection) if topics is None else topics
            upto = _batch_end(connection, mailing_list.id, after, batch_size)
            span = _Span(after, upto)
            rows = list(_active(connection, mailing_list.id, span))
            if rows:
                ids = [row[0] for row in rows]
                span = replace(span, first=min(ids), last=max(ids))
                selection = _select(
                    connection,
                    mailing_list,
                    rows,
                    span,
                    topics,
                    now=now,
                    max_articles=max_articles,
                    day=day,
                    max_lateness=max_lateness,
                    editorial=editorial,
                )
        if rows:
            yield selection
        if upto is None:
            return
        after = upto


@dataclass(frozen=True)
class _Span:
    """One batch of `due_in_batches`: the subscribers whose id is in (after, upto] (`upto`
    None: every one above `after`); `first` and `last` bound their subscriptions' ids."""

    after: int
    upto: int | None
    first: int | None = None
    last: int | None = None


def _subscribers_in(column: ColumnElement[int], span: _Span | None) -> list[ColumnElement[bool]]:
    """Conditions keeping a batch's subscriber ids in `column` (none: every subscriber).

    Explicit ranges, never a join to the batch's subscriptions: PostgreSQL then walks the
    (list_id, subscriber_id) indexes over the range, whatever its statistics say (the
    delivery table grows by the earlier batches while its statistics still say empty)."""
    if span is None:
        return []
    bounds = [column > span.after]
    return bounds if span.upto is None else [*bounds, column <= span.upto]


def _subscriptions_in(column: ColumnElement[int], span: _Span | None) -> list[ColumnElement[bool]]:
    """Conditions keeping `column` within the batch's subscription ids (none: no batch)."""
    if span is None or span.first is None or span.last is None:
        return []
    return [column >= span.first, column <= span.last]


def _batch_end(connection: Connection, list_id: int, after: int, size: int) -> int | None:
    """The subscriber id that ends the batch starting above `after`: None for the last one."""
    found = connection.execute(
        select(SUBSCRIPTION.c.subscriber_id)
        .where(SUBSCRIPTION.c.list_id == list_id, SUBSCRIPTION.c.subscriber_id > after)
        .order_by(SUBSCRIPTION.c.subscriber_id)
        .offset(size - 1)
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def _select(
    connection: Connection,
    mailing_list: MailingList,
    rows: ActiveRows,
    span: _Span | None,
    topics: dict[int, TopicView],
    *,
    now: datetime,
    max_articles: int,
    day: date | None,
    max_lateness: timedelta | None,
    editorial: Editorial | None,
) -> Selection:
    """`select_due` over `rows` (from `_active`); `span`: their subscriber ids' range."""
    assert mailing_list.id is not None
    list_id = mailing_list.id
    offered = _offered(connection, list_id) or tuple(sorted(topics))
    offered_set = set(offered)
    kept: dict[tuple[int, ...], tuple[int, ...]] = {}  # chosen topics -> those still offered
    chosen = _chosen_topics(connection, list_id, span)
    last = _last_deliveries(connection, list_id, span)
    span_days = first_window(mailing_list.cadence)
    weekly = mailing_list.cadence == Cadence.WEEKLY
    default_hour = mailing_list.default_hour  # read once: an ORM attribute costs per access
    due: list[Due] = []
    late: list[Due] = []
    waiting: list[Due] = []
    for sid, subscriber_id, email, name, locale, zone, send_hour in rows:
        hour = default_hour if send_hour is None else send_hour
        local_day = local_due_date(now, zone, hour, day)
        cutoff, last_day = last.get(subscriber_id, (None, None))
        if local_day is None and max_lateness is not None and day is None and last_day is not None:
            yesterday = now.astimezone(_zone(zone)).date() - timedelta(days=1)
            local_day = local_due_date(now, zone, hour, yesterday)
        if local_day is None:
            continue
        if last_day is not None and (
            last_day >= local_day or (weekly and last_day > local_day - timedelta(7))
        ):
            continue
        start = cutoff if cutoff is not None else now - span_days
        picked = chosen.get(sid, ())
        topic_ids = kept.get(picked)
        if topic_ids is None:  # a few hundred distinct choices among a million subscribers
            topic_ids = kept[picked] = tuple(t for t in picked if t in offered_set) or offered
        item = Due(sid, subscriber_id, email, name, locale, topic_ids, local_day, start, now)
        if editorial is not None and editorial.blocked(local_day):
            waiting.append(item)
            continue
        moment = due_moment(local_day, zone, hour)
        since = editorial.sendable_since(local_day) if editorial is not None else None
        if max_lateness is not None and _past(now, max(moment, since or moment), max_lateness):
            if last_day is not None:
                late.append(replace(item, window_end=start))
            continue
        due.append(item)
    selection = _segments_for(
        connection,
        mailing_list,
        due,
        max_articles=max_articles,
        topics=topics,
        editorial=editorial,
        span=span,
    )
    selection.late = late
    selection.waiting = waiting
    return selection


def segments_for(
    connection: Connection,
    mailing_list: MailingList,
    due: Sequence[Due],
    *,
    max_articles: int,
    tracking: bool = True,
    topics: dict[int, TopicView] | None = None,
    editorial: Editorial | None = None,
) -> Selection:
    """The articles each of `due` gets, grouped into segments (sending and preview both).

    `editorial`: the editors' pins, excludes, topic order, subject and note per edition.
    """
    return _segments_for(
        connection,
        mailing_list,
        due,
        max_articles=max_articles,
        tracking=tracking,
        topics=topics,
        editorial=editorial,
    )


def _segments_for(
    connection: Connection,
    mailing_list: MailingList,
    due: Sequence[Due],
    *,
    max_articles: int,
    tracking: bool = True,
    topics: dict[int, TopicView] | None = None,
    editorial: Editorial | None = None,
    span: _Span | None = None,
) -> Selection:
    if not due:
        return Selection(mailing_list.id or 0, mailing_list.slug, [], [])
    topics = _topics(connection) if topics is None else topics
    start = min(d.window_start for d in due)
    end = max(d.window_end for d in due)
    pinned = editorial.pinned_ids if editorial is not None else set()
    candidates = _candidates(connection, start, end, topics, pinned)
    sent = _already_sent(connection, mailing_list.id or 0, candidates, span)
    return _segment(mailing_list, due, candidates, sent, topics, max_articles, tracking, editorial)


def first_window(cadence: str) -> timedelta:
    """How far back a first digest looks: a day, or a week for weekly lists."""
    return FIRST_WINDOW.get(cadence, FIRST_WINDOW[Cadence.DAILY.value])


def previous_cutoff(connection: Connection, list_id: int, subscriber_id: int) -> datetime | None:
    """Where the subscriber's next digest starts: the cutoff of their latest one."""
    cutoff = connection.execute(
        select(func.max(DELIVERY.c.window_end)).where(
            DELIVERY.c.list_id == list_id, DELIVERY.c.subscriber_id == subscriber_id
        )
    ).scalar()
    return _aware(cutoff)


def due_on(
    connection: Connection, mailing_list: MailingList, day: date, *, now: datetime
) -> list[Due]:
    """Each active subscription's digest of `day` that is not planned yet, as planning would
    see it when its hour comes (or now, if that hour has passed): editors' projections."""
    assert mailing_list.id is not None
    list_id = mailing_list.id
    offered = _offered(connection, list_id) or tuple(sorted(_topics(connection)))
    chosen = _chosen_topics(connection, list_id)
    last = _last_deliveries(connection, list_id)
    planned = set(
        connection.execute(
            select(DELIVERY.c.subscriber_id)
            .join(EDITION, EDITION.c.id == DELIVERY.c.edition_id)
            .where(EDITION.c.list_id == list_id, EDITION.c.local_date == day)
        ).scalars()
    )
    span = first_window(mailing_list.cadence)
    due: list[Due] = []
    for sid, subscriber_id, email, name, locale, zone, send_hour in _active(connection, list_id):
        cutoff, last_day = last.get(subscriber_id, (None, None))
        if subscriber_id in planned or (
            last_day is not None
            and (
                last_day >= day
                or (mailing_list.cadence == Cadence.WEEKLY and last_day > day - timedelta(7))
            )
        ):
            continue
        hour = mailing_list.default_hour if send_hour is None else send_hour
        end = max(due_moment(day, zone, hour), now).astimezone(UTC)
        start = cutoff if cutoff is not None and cutoff < end else end - span
        topic_ids = tuple(t for t in chosen.get(sid, ()) if t in set(offered)) or offered
        due.append(Due(sid, subscriber_id, email, name, locale, topic_ids, day, start, end))
    return due


def _segment(
    mailing_list: MailingList,
    due: Sequence[Due],
    candidates: Sequence[_Candidate],
    sent: dict[int, set[int]],
    topics: dict[int, TopicView],
    max_articles: int,
    tracking: bool = True,
    editorial: Editorial | None = None,
) -> Selection:
    steering = editorial or Editorial()
    groups: dict[tuple[tuple[int, ...], datetime, str, date], list[Due]] = defaultdict(list)
    for item in due:
        controls = steering.controls(item.local_date)
        topic_ids = controls.order_topics(item.topic_ids) if controls else item.topic_ids
        groups[(topic_ids, item.window_start, item.locale, item.local_date)].append(item)
    segments: dict[str, PlannedSegment] = {}
    empty: list[Due] = []
    by_id = {c.id: c for c in candidates}
    for (topic_ids, start, locale, local_day), members in groups.items():
        controls = steering.controls(local_day)
        ranked = _rank(candidates, topic_ids, start, members[0].window_end)
        if controls is not None:
            ranked = _steer(ranked, by_id, topic_ids, controls)
        # Members who had none of these articles yet all get the same digest: worked out once.
        shared: tuple[PlannedSegment | None] | None = None
        for member in members:
            already = sent.get(member.subscriber_id)
            if shared is not None and not already:
                if shared[0] is None:
                    empty.append(member)
                else:
                    shared[0].recipients.append(member)
                continue
            chosen = [c for c in ranked if c.id not in already] if already else ranked
            chosen = chosen[:max_articles]
            if not chosen:
                shared = shared if already else (None,)
                empty.append(member)
                continue
            article_ids = tuple(c.id for c in chosen)
            key = _key(topic_ids, locale, local_day, article_ids)
            planned = segments.get(key)
            if planned is None:
                order = tuple(topics[t] for t in topic_ids if t in topics)
                views = tuple(_in_order(c, topic_ids, topics) for c in chosen)
                segment = Segment(
                    articles=views,
                    topics=order,
                    date=local_day,
                    list_name=mailing_list.name,
                    locale=locale,
                    cadence=mailing_list.cadence,
                    tracking=tracking,
                    lead=controls.lead_count(article_ids) if controls else 0,
                    note=controls.note if controls else "",
                    subject=controls.subject_for(locale) if controls else None,
                )
                planned = segments[key] = PlannedSegment(key, segment, topic_ids, article_ids)
            shared = shared if already else (planned,)
            planned.recipients.append(member)
    return Selection(mailing_list.id or 0, mailing_list.slug, list(segments.values()), empty)


def _rank(
    candidates: Sequence[_Candidate], topic_ids: tuple[int, ...], start: datetime, end: datetime
) -> list[_Candidate]:
    """Articles of these topics ingested in (start, end]: newest first, then by topic order."""
    position = {t: i for i, t in enumerate(topic_ids)}
    wanted = frozenset(topic_ids)
    matching = [
        c for c in candidates if start < c.ingested_at <= end and not c.topic_ids.isdisjoint(wanted)
    ]
    matching.sort(
        key=lambda c: (
            -c.recency.timestamp(),
            min(position[t] for t in c.topic_ids if t in position),
            -c.id,
        )
    )
    return matching


def _steer(
    ranked: Sequence[_Candidate],
    by_id: dict[int, _Candidate],
    topic_ids: tuple[int, ...],
    controls: EditionControls,
) -> list[_Candidate]:
    """The editors' ranking: pinned articles first, in pin order, for subscribers of one of
    their topics (top stories for everyone, whatever their window); excluded ones out."""
    wanted = frozenset(topic_ids)
    lead = [
        c
        for a in controls.pinned
        if (c := by_id.get(a)) is not None
        and a not in controls.excluded
        and (a in controls.top or not c.topic_ids.isdisjoint(wanted))
    ]
    first = {c.id for c in lead}
    return lead + [c for c in ranked if c.id not in first and c.id not in controls.excluded]


def _in_order(
    candidate: _Candidate, topic_ids: tuple[int, ...], topics: dict[int, TopicView]
) -> ArticleView:
    """The article with its topics in the subscriber's order, so it lands in their first one."""
    ordered = [topics[t].slug for t in topic_ids if t in candidate.topic_ids and t in topics]
    rest = [topics[t].slug for t in sorted(candidate.topic_ids) if t not in topic_ids]
    view = candidate.view
    return ArticleView(
        id=view.id,
        title=view.title,
        url=view.url,
        summary=view.summary,
        image_url=view.image_url,
        published_at=view.published_at,
        topics=tuple(ordered + rest),
        body_chars=view.body_chars,
    )


def _key(topic_ids: Iterable[int], locale: str, day: date, article_ids: Iterable[int]) -> str:
    topics, articles = ",".join(map(str, topic_ids)), ",".join(map(str, article_ids))
    raw = f"{topics}|{locale}|{day.isoformat()}|{articles}"
    return hashlib.blake2s(raw.encode(), digest_size=8).hexdigest()


def _topics(connection: Connection) -> dict[int, TopicView]:
    rows = connection.execute(select(TOPIC.c.id, TOPIC.c.slug, TOPIC.c.name, TOPIC.c.name_en))
    return {tid: TopicView(slug, name, name_en) for tid, slug, name, name_en in rows}


def _offered(connection: Connection, list_id: int) -> tuple[int, ...]:
    rows = connection.execute(
        select(LIST_TOPIC.c.topic_id)
        .where(LIST_TOPIC.c.list_id == list_id)
        .order_by(LIST_TOPIC.c.position)
    )
    return tuple(rows.scalars())


def _active(connection: Connection, list_id: int, span: _Span | None = None) -> ActiveRows:
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
        .outerjoin(SUPPRESSION, SUPPRESSION.c.email == SUBSCRIBER.c.email)
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


def _chosen_topics(
    connection: Connection, list_id: int, span: _Span | None = None
) -> dict[int, tuple[int, ...]]:
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


def _last_deliveries(
    connection: Connection, list_id: int, span: _Span | None = None
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
        result[subscriber_id] = (_aware(cutoff), _as_date(last_day))
    return result


def _candidates(
    connection: Connection,
    start: datetime,
    end: datetime,
    topics: dict[int, TopicView],
    pinned: Iterable[int] = (),
) -> list[_Candidate]:
    """Every article ingested in (start, end] that has a topic, with its topics (and the
    pinned articles, wherever their ingestion time)."""
    window = and_(ARTICLE.c.ingested_at > start, ARTICLE.c.ingested_at <= end)
    extra = sorted(pinned)
    if extra:
        window = or_(window, ARTICLE.c.id.in_(extra))
    tags: dict[int, set[int]] = defaultdict(set)
    for article_id, topic_id in connection.execute(
        select(ARTICLE_TOPIC.c.article_id, ARTICLE_TOPIC.c.topic_id)
        .join(ARTICLE, ARTICLE.c.id == ARTICLE_TOPIC.c.article_id)
        .where(window)
    ):
        tags[article_id].add(topic_id)
    rows = connection.execute(
        select(
            ARTICLE.c.id,
            ARTICLE.c.title,
            ARTICLE.c.url,
            ARTICLE.c.summary,
            ARTICLE.c.image_url,
            ARTICLE.c.published_at,
            ARTICLE.c.ingested_at,
            func.length(ARTICLE.c.body_html),
        ).where(window)
    )
    candidates = []
    for aid, title, url, summary, image, published, ingested, body_chars in rows:
        if aid not in tags:
            continue
        view = ArticleView(
            id=aid,
            title=title,
            url=url,
            summary=summary or "",
            image_url=image,
            published_at=published,
            body_chars=body_chars or 0,
        )
        # Recency: the feed's date, unless it claims to be newer than our own ingestion.
        recency = min(published, ingested) if published is not None else ingested
        candidates.append(_Candidate(aid, ingested, recency, frozenset(tags[aid]), view))
    return candidates


def _already_sent(
    connection: Connection,
    list_id: int,
    candidates: Sequence[_Candidate],
    span: _Span | None = None,
) -> dict[int, set[int]]:
    """subscriber id -> ids of candidate articles already in one of their digests."""
    if not candidates:
        return {}
    ids = {c.id for c in candidates}
    since = min(c.ingested_at for c in candidates)
    query = select(DELIVERY.c.subscriber_id, DELIVERY.c.article_ids).where(
        DELIVERY.c.list_id == list_id,
        DELIVERY.c.created_at >= since,
        DELIVERY.c.status != DeliveryStatus.SKIPPED.value,
        *_subscribers_in(DELIVERY.c.subscriber_id, span),
    )
    rows = connection.execute(query)
    sent: dict[int, set[int]] = defaultdict(set)
    for subscriber_id, article_ids in rows.all():
        overlap = ids.intersection(article_ids or ())
        if overlap:
            sent[subscriber_id] |= overlap
    return sent


def _past(now: datetime, moment: datetime, limit: timedelta) -> bool:
    """More than `limit` of real time separates `moment` from `now` (whatever their zones)."""
    return now.timestamp() - moment.timestamp() > limit.total_seconds()


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite's MAX() returns the stored text
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _as_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
