"""Ingest: fetch each feed, parse it, store its items as articles and tag them with topics.

Each feed is fetched and stored on its own: a feed that fails records its error
(`Feed.last_error`), leaves its articles as they were, and the other feeds go on.
An item seen again (same guid in the same feed, or same canonical URL in the feed when it has
no guid: see `digest.ingest.identity`) updates its article in place; `ingested_at` never
changes, so an edit never makes an article new again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import ExitStack, closing, suppress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from digest.clock import utcnow
from digest.config import IngestSettings
from digest.db.bulk import DriverSql
from digest.db.engine import session_scope
from digest.db.models import Article, Feed, Topic
from digest.db.tables import ARTICLE, ARTICLE_TOPIC
from digest.ingest import feeds as feed_store
from digest.ingest.article_tags import feed_defaults, sync_tags, tag_row
from digest.ingest.documents import FeedError, FeedItem, ParsedFeed, Skipped, parse_document
from digest.ingest.identity import Seen, inserted_ids, known_articles, unique_items
from digest.ingest.matcher import Tag, TopicIndex
from digest.ingest.parallel import ParseWorkers, SplitFailed, one_part, parse_parts

logger = logging.getLogger(__name__)

# Article columns an updated item may change.
_CONTENT_FIELDS = (
    "url",
    "title",
    "summary",
    "body_html",
    "image_url",
    "author",
    "published_at",
    "language",
    "categories",
)


class FeedStatus(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"


@dataclass
class FeedReport:
    """What one feed gave in one run."""

    url: str
    status: FeedStatus = FeedStatus.FETCHED
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None


@dataclass
class IngestReport:
    feeds: list[FeedReport] = field(default_factory=list)

    @property
    def failed(self) -> list[FeedReport]:
        return [f for f in self.feeds if f.status is FeedStatus.FAILED]

    @property
    def new(self) -> int:
        return sum(f.new for f in self.feeds)


@dataclass(frozen=True)
class _Run:
    """What every feed of one ingest run shares: built once by `ingest`."""

    engine: Engine
    settings: IngestSettings
    http: httpx.Client | None  # None when every feed is a local file
    index: TopicIndex
    defaults: Mapping[int, Mapping[int, str]]  # feed id -> its default topics
    clock: Callable[[], datetime]
    workers: ParseWorkers


def ingest(
    engine: Engine,
    settings: IngestSettings,
    *,
    only: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_feed: Callable[[FeedReport], None] | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Fetch every feed (or only the one named) and store what is new or changed.

    A big RSS/Atom document is parsed by `workers` processes (default: one per CPU; 0 or 1:
    none), see `digest.ingest.parallel`; what is stored is the same either way.
    """
    with session_scope(engine) as session:
        targets = [feed_store.get_feed(session, only)] if only else feed_store.all_feeds(session)
        index = TopicIndex(session.exec(select(Topic)))
        defaults = feed_defaults(session)
    report = IngestReport()
    with ExitStack() as stack:
        http = None
        if not all(feed_store.is_local(f.url) for f in targets):
            # Only for URLs: setting up TLS costs ~50 ms, a run of local files needs none.
            http = stack.enter_context(httpx.Client(follow_redirects=True))
        pool = stack.enter_context(ParseWorkers(workers))
        run = _Run(engine, settings, http, index, defaults, clock, pool)
        for feed in targets:
            assert feed.id is not None
            one = _ingest_feed(run, feed)
            report.feeds.append(one)
            if on_feed is not None:
                on_feed(one)
    return report


def _ingest_feed(run: _Run, feed: Feed) -> FeedReport:
    """One feed's run; whatever goes wrong (a bug on a hostile document included) is that
    feed's error, recorded on it: the other feeds and the scheduler's job go on."""
    report = FeedReport(url=feed.url)
    now = run.clock()
    try:
        _fetch_and_store(run, feed, now, report)
    except Exception as exc:
        logger.exception("ingesting feed %s failed unexpectedly", feed.url)
        error = f"unexpected error, nothing stored: {type(exc).__name__}: {exc}"[:2000]
        report.status, report.error = FeedStatus.FAILED, error
        with suppress(SQLAlchemyError):  # a database down fails the next feeds' own way
            _record(run.engine, feed, now, error=error)
    return report


def _fetch_and_store(run: _Run, feed: Feed, now: datetime, report: FeedReport) -> None:
    try:
        fetched = feed_store.fetch(
            feed.url,
            settings=run.settings,
            client=run.http,
            etag=feed.etag,
            last_modified=feed.last_modified,
        )
        if fetched.content is None:
            report.status = FeedStatus.NOT_MODIFIED
            _record(run.engine, feed, now, error=None)
            return
        document = fetched.content
        location = fetched.location or feed.url
        # Parts of a big document are stored as the workers parse the next ones.
        parts = parse_parts(
            document,
            content_type=fetched.content_type,
            location=location,
            now=now,
            workers=run.workers,
            max_depth=run.settings.max_depth,
        )
    except FeedError as exc:
        report.status, report.error = FeedStatus.FAILED, str(exc)
        _record(run.engine, feed, now, error=str(exc))
        return
    try:
        try:
            _store_parts(run, feed, fetched, parts, now, report)
        except SplitFailed:
            # A chunk read alone did not read as in the whole document (rolled back: nothing
            # stored): read the document whole, as for a small one.
            whole = parse_document(
                document,
                content_type=fetched.content_type,
                location=location,
                now=now,
                max_depth=run.settings.max_depth,
            )
            _store_parts(run, feed, fetched, one_part(whole), now, report)
    except FeedError as exc:
        report.status, report.error = FeedStatus.FAILED, str(exc)
        _record(run.engine, feed, now, error=str(exc))
    except SQLAlchemyError as exc:
        # Rolled back as a whole (e.g. a concurrent run stored the same item first): the
        # next run retries, since the ETag was not saved either.
        error = f"database error, nothing stored: {getattr(exc, 'orig', None) or exc}"
        report.status, report.error = FeedStatus.FAILED, error
        _record(run.engine, feed, now, error=error)


def _store_parts(
    run: _Run,
    feed: Feed,
    fetched: feed_store.Fetched,
    parts: Generator[ParsedFeed, None, None],
    now: datetime,
    report: FeedReport,
) -> None:
    """Store the parts of one document in one transaction; counts and skips go to `report`."""
    with closing(parts), session_scope(run.engine) as session:
        stored = session.get(Feed, feed.id)
        if stored is None:  # removed while we were fetching
            report.status, report.error = FeedStatus.FAILED, "the feed was removed meanwhile"
            return
        topics = run.defaults.get(stored.id or 0, {})
        seen = Seen()
        skipped: list[Skipped] = []
        repeated: list[Skipped] = []
        new = updated = unchanged = 0
        title = ""
        for part in parts:
            title = part.title
            items, again = unique_items(part.items, seen)
            skipped += part.skipped
            repeated += again
            counts = store_items(session, stored, items, run.index, topics, now)
            new, updated, unchanged = new + counts[0], updated + counts[1], unchanged + counts[2]
        stored.title = title or stored.title
        stored.etag, stored.last_modified = fetched.etag, fetched.last_modified
        stored.last_fetched_at, stored.last_error = now, None
    report.skipped = skipped + repeated
    report.new, report.updated, report.unchanged = new, updated, unchanged


def _record(engine: Engine, feed: Feed, now: datetime, *, error: str | None) -> None:
    with session_scope(engine) as session:
        stored = session.get(Feed, feed.id)
        if stored is not None:
            stored.last_fetched_at, stored.last_error = now, error


def store_items(
    session: Session,
    feed: Feed,
    items: Sequence[FeedItem],
    index: TopicIndex,
    feed_topics: Mapping[int, str],
    now: datetime,
) -> tuple[int, int, int]:
    """Insert new items, update changed ones; returns (new, updated, unchanged).

    `items` must not repeat an identity (see `unique_items`).
    """
    assert feed.id is not None
    known = known_articles(session, feed.id, items)
    new_rows: list[dict[str, Any]] = []
    new_tags: list[dict[int, Tag]] = []
    resync: dict[int, tuple[dict[int, Tag], str]] = {}
    updated = 0
    for item in items:
        article = known.article(item)
        tags = index.tags(
            feed_topics=feed_topics,
            categories=item.categories,
            title=item.title,
            summary=item.summary,
        )
        if article is None or article.id is None:
            new_rows.append(_article_row(item, feed, now))
            new_tags.append(tags)
            continue
        changed = _apply(article, item)
        if changed:
            article.updated_at = now
            updated += 1
        if article.feed_id != feed.id:  # taken back from a removed feed
            article.feed_id = feed.id
            changed = True
        if changed:
            resync[article.id] = (tags, feed.url)
    session.flush()
    if new_rows:
        # One executemany instead of a unit-of-work flush per object (RETURNING in parameter
        # order would cost one statement per row on SQLite); the ids are read back by key.
        insert_rows(session, ARTICLE, new_rows)
        ids = inserted_ids(session, feed.id, new_rows)
        rows = [tag_row(i, t) for i, tags in zip(ids, new_tags, strict=True) for t in tags.values()]
        insert_rows(session, ARTICLE_TOPIC, rows)
    sync_tags(session, resync)
    return len(new_rows), updated, len(items) - len(new_rows) - updated


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the rows (all with the same keys) in one executemany at the driver level.

    What the driver is sent is what SQLAlchemy would send (each column's bind processor: the
    same stored text for dates and JSON); skipping its per-row parameter processing makes
    storing a big feed ~2x faster (see digest/db/bulk.py). Other databases: a Core insert.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        session.execute(insert(table), list(rows))
        return
    sql = DriverSql(connection)
    names = list(rows[0])
    processors = [
        (position, processor)
        for position, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    values: list[tuple[Any, ...]] = []
    for row in rows:
        value = [row[name] for name in names]
        for position, processor in processors:
            value[position] = processor(value[position])
        values.append(tuple(value))
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    sql.many(
        f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({sql.marks(len(names))})", values
    )


def _article_row(item: FeedItem, feed: Feed, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed.id,
        "guid": item.guid,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "body_html": item.body_html,
        "image_url": item.image_url,
        "author": item.author,
        "published_at": item.published_at,
        "language": item.language,
        "categories": list(item.categories),
        "ingested_at": now,
        "updated_at": None,
    }


def _apply(article: Article, item: FeedItem) -> bool:
    """Copy the item's content onto the article; True if anything changed."""
    changed = False
    for name in _CONTENT_FIELDS:
        value = getattr(item, name)
        if name == "categories":
            value = list(value)
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    return changed
