"""Who is due now on a list, and the digests they get: planning's and the editors' view.

A constant number of queries per list, whatever its size (`digest.selection.queries`);
planning, `due_in_batches`, runs them per batch of subscribers, in bounded memory.
Everything else is computed in memory, once per group of subscribers who share topics,
language, date and window (in steady state, a handful of groups per list).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Engine

from digest.catalog.topics import topic_views
from digest.catalog.views import TopicView
from digest.editions.controls import Editorial
from digest.selection import queries
from digest.selection.segments import PlannedSegment, Pool, plan_segments
from digest.selection.window import Due, due_moment, local_due_date, reader_window, zone
from subscribers.models import Cadence, MailingList

# Subscriptions `due_in_batches` reads and plans at a time: few round trips per list, and a
# memory use that does not grow with the list.
BATCH = 20_000


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
class _Fill:
    """How digests are filled: at most `max_articles`, steered by the editors' controls."""

    max_articles: int
    editorial: Editorial | None = None
    tracking: bool = True


@dataclass(frozen=True)
class PlanRequest:
    """What one planning run asks (`select_due`, `due_in_batches`), built once per run.

    `day`: that local date's edition instead of whatever is due at `now`; `max_lateness`:
    the scheduler catching up (see `select_due`); `editorial`: the editors' controls.
    """

    now: datetime
    max_articles: int
    day: date | None = None
    max_lateness: timedelta | None = None
    editorial: Editorial | None = None


def select_due(
    connection: Connection, mailing_list: MailingList, request: PlanRequest
) -> Selection:
    """Everything `digest send` needs to plan the list's digests due at `request.now`.

    With `request.max_lateness` (the scheduler catching up after downtime), a subscriber's latest
    owed digest is today's once their hour has come, else yesterday's if they have had one
    before (downtime over their local midnight); it is due while at most `max_lateness` has
    passed since its hour, and past that it goes to `Selection.late` (a first digest just
    waits for the next hour instead).

    With `request.editorial`, subscribers whose edition is held or awaits approval go to
    `Selection.waiting`; lateness then counts from the edition's approval or release.

    The whole list at once: `due_in_batches` gives the same answer in bounded memory.
    """
    assert mailing_list.id is not None
    rows = queries.active(connection, mailing_list.id)
    return _select(connection, mailing_list, rows, None, topic_views(connection), request)


def due_in_batches(
    engine: Engine, mailing_list: MailingList, request: PlanRequest, *, batch_size: int = BATCH
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
            topics = topic_views(connection) if topics is None else topics
            upto = queries.batch_end(connection, mailing_list.id, after, batch_size)
            span = queries.Span(after, upto)
            rows = list(queries.active(connection, mailing_list.id, span))
            if rows:
                ids = [row[0] for row in rows]
                span = replace(span, first=min(ids), last=max(ids))
                selection = _select(connection, mailing_list, rows, span, topics, request)
        if rows:
            yield selection
        if upto is None:
            return
        after = upto


def _select(
    connection: Connection,
    mailing_list: MailingList,
    rows: queries.ActiveRows,
    span: queries.Span | None,
    topics: dict[int, TopicView],
    request: PlanRequest,
) -> Selection:
    """`select_due` over `rows` (from `queries.active`); `span`: their subscriber ids' range."""
    assert mailing_list.id is not None
    list_id = mailing_list.id
    kept = _Kept(queries.offered(connection, list_id) or tuple(sorted(topics)))
    chosen = queries.chosen_topics(connection, list_id, span)
    last = queries.last_deliveries(connection, list_id, span)
    cadence = mailing_list.cadence
    default_hour = mailing_list.default_hour  # read once: an ORM attribute costs per access
    now, day, editorial = request.now, request.day, request.editorial
    max_lateness = request.max_lateness
    due: list[Due] = []
    late: list[Due] = []
    waiting: list[Due] = []
    for sid, subscriber_id, email, name, locale, tz, send_hour in rows:
        hour = default_hour if send_hour is None else send_hour
        local_day = local_due_date(now, tz, hour, day)
        cutoff, last_day = last.get(subscriber_id, (None, None))
        # Catching up: yesterday's digest, still owed past local midnight.
        if local_day is None and max_lateness is not None and day is None and last_day:
            yesterday = now.astimezone(zone(tz)).date() - timedelta(days=1)
            local_day = local_due_date(now, tz, hour, yesterday)
        if local_day is None or _had(last_day, local_day, cadence):
            continue
        moment = due_moment(local_day, tz, hour)
        start, end = reader_window(moment, now, cutoff, cadence)
        topic_ids = kept(chosen.get(sid, ()))
        item = Due(sid, subscriber_id, email, name, locale, topic_ids, local_day, start, end)
        if editorial is not None and editorial.blocked(local_day):
            waiting.append(item)
            continue
        since = editorial.sendable_since(local_day) if editorial is not None else None
        if max_lateness is not None and _past(now, max(moment, since or moment), max_lateness):
            if last_day is not None:
                late.append(replace(item, window_end=start))
            continue
        due.append(item)
    fill = _Fill(request.max_articles, editorial)
    selection = _segments_for(connection, mailing_list, due, topics, fill, span)
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
    editorial: Editorial | None = None,
) -> Selection:
    """The articles each of `due` gets, grouped into segments (sending and previews both).

    `editorial`: the editors' pins, excludes, topic order, subject and note per edition.
    """
    fill = _Fill(max_articles, editorial, tracking)
    topics = topic_views(connection) if due else {}
    return _segments_for(connection, mailing_list, due, topics, fill, None)


def _segments_for(
    connection: Connection,
    mailing_list: MailingList,
    due: Sequence[Due],
    topics: dict[int, TopicView],
    fill: _Fill,
    span: queries.Span | None,
) -> Selection:
    if not due:
        return Selection(mailing_list.id or 0, mailing_list.slug, [], [])
    start = min(d.window_start for d in due)
    end = max(d.window_end for d in due)
    pinned = fill.editorial.pinned_ids if fill.editorial is not None else set()
    found = queries.candidates(connection, start, end, pinned)
    sent = queries.already_sent(connection, mailing_list.id or 0, found, span)
    pool = Pool(found, sent, topics, fill.max_articles)
    segments, empty = plan_segments(
        mailing_list, due, pool, tracking=fill.tracking, editorial=fill.editorial
    )
    return Selection(mailing_list.id or 0, mailing_list.slug, segments, empty)


def due_on(
    connection: Connection, mailing_list: MailingList, day: date, *, now: datetime
) -> list[Due]:
    """Each active subscription's digest of `day` that is not planned yet, as planning would
    see it when its hour comes (or now, if that hour has passed): editors' projections."""
    assert mailing_list.id is not None
    list_id = mailing_list.id
    kept = _Kept(queries.offered(connection, list_id) or tuple(sorted(topic_views(connection))))
    chosen = queries.chosen_topics(connection, list_id)
    last = queries.last_deliveries(connection, list_id)
    planned = queries.planned_on(connection, list_id, day)
    cadence = mailing_list.cadence
    due: list[Due] = []
    for sid, subscriber_id, email, name, locale, tz, send_hour in queries.active(
        connection, list_id
    ):
        cutoff, last_day = last.get(subscriber_id, (None, None))
        if subscriber_id in planned or _had(last_day, day, cadence):
            continue
        hour = mailing_list.default_hour if send_hour is None else send_hour
        start, end = reader_window(due_moment(day, tz, hour), now, cutoff, cadence)
        topic_ids = kept(chosen.get(sid, ()))
        due.append(Due(sid, subscriber_id, email, name, locale, topic_ids, day, start, end))
    return due


class _Kept:
    """A reader's chosen topics that the list still offers (none: all it offers), worked out
    once per distinct choice: a few hundred among a million subscribers."""

    def __init__(self, offered: tuple[int, ...]) -> None:
        self.offered = offered
        self._offered = set(offered)
        self._kept: dict[tuple[int, ...], tuple[int, ...]] = {}

    def __call__(self, picked: tuple[int, ...]) -> tuple[int, ...]:
        found = self._kept.get(picked)
        if found is None:
            found = tuple(t for t in picked if t in self._offered) or self.offered
            self._kept[picked] = found
        return found


def _had(last_day: date | None, day: date, cadence: str) -> bool:
    """The reader's latest digest already covers `day` (a weekly one: its whole week)."""
    if last_day is None:
        return False
    return last_day >= day or (cadence == Cadence.WEEKLY and last_day > day - timedelta(7))


def _past(now: datetime, moment: datetime, limit: timedelta) -> bool:
    """More than `limit` of real time separates `moment` from `now` (whatever their zones)."""
    return now.timestamp() - moment.timestamp() > limit.total_seconds()
