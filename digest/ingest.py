"""Ingest: fetch each feed, parse it, store its items as articles and tag them with topics.

Each feed is fetched and stored on its own: a feed that fails records its error
(`Feed.last_error`), leaves its articles as they were, and the other feeds go on.
An item seen again (same guid, or same canonical URL when it has no guid) updates its
article in place; `ingested_at` never changes, so an edit never makes an article new again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from digest import feeds as feed_store
from digest.clock import utcnow
from digest.config import IngestSettings
from digest.db import session_scope
from digest.items import FeedError, FeedItem, Skipped, parse_document
from digest.models import Article, ArticleTopic, Feed, Topic
from digest.tagging import Tag, TopicIndex
from digest.tags import CHUNK, feed_defaults, sync_tags, tag_row

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


def ingest(
    engine: Engine,
    settings: IngestSettings,
    *,
    only: str | None = None,
    client: httpx.Client | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_feed: Callable[[FeedReport], None] | None = None,
) -> IngestReport:
    """Fetch every feed (or only the one named) and store what is new or changed."""
    with session_scope(engine) as session:
        targets = [feed_store.get_feed(session, only)] if only else feed_store.all_feeds(session)
        index = TopicIndex(session.exec(select(Topic)))
        defaults = feed_defaults(session)
    report = IngestReport()
    with ExitStack() as stack:
        http = client or stack.enter_context(httpx.Client(follow_redirects=True))
        for feed in targets:
            assert feed.id is not None
            one = _ingest_feed(engine, feed, settings, http, index, defaults, clock)
            report.feeds.append(one)
            if on_feed is not None:
                on_feed(one)
    return report


def _ingest_feed(
    engine: Engine,
    feed: Feed,
    settings: IngestSettings,
    http: httpx.Client,
    index: TopicIndex,
    defaults: Mapping[int, Mapping[int, str]],
    clock: Callable[[], datetime],
) -> FeedReport:
    report = FeedReport(url=feed.url)
    now = clock()
    try:
        fetched = feed_store.fetch(
            feed.url,
            settings=settings,
            client=http,
            etag=feed.etag,
            last_modified=feed.last_modified,
        )
        if fetched.content is None:
            report.status = FeedStatus.NOT_MODIFIED
            _record(engine, feed, now, error=None)
            return report
        parsed = parse_document(
            fetched.content,
            content_type=fetched.content_type,
            location=fetched.location or feed.url,
            now=now,
        )
    except FeedError as exc:
        report.status, report.error = FeedStatus.FAILED, str(exc)
        _record(engine, feed, now, error=str(exc))
        return report
    items, repeated = unique_items(parsed.items)
    report.skipped = parsed.skipped + repeated
    try:
        with session_scope(engine) as session:
            stored = session.get(Feed, feed.id)
            if stored is None:  # removed while we were fetching
                report.status, report.error = FeedStatus.FAILED, "the feed was removed meanwhile"
                return report
            topics = defaults.get(stored.id or 0, {})
            counts = store_items(session, stored, items, index, topics, now)
            stored.title = parsed.title or stored.title
            stored.etag, stored.last_modified = fetched.etag, fetched.last_modified
            stored.last_fetched_at, stored.last_error = now, None
    except SQLAlchemyError as exc:
        # Rolled back as a whole (e.g. a concurrent run stored the same item first): the
        # next run retries, since the ETag was not saved either.
        error = f"database error, nothing stored: {getattr(exc, 'orig', None) or exc}"
        report.status, report.error = FeedStatus.FAILED, error
        _record(engine, feed, now, error=error)
        return report
    report.new, report.updated, report.unchanged = counts
    return report


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
    by_guid, by_url = _existing(session, items)
    new_rows: list[dict[str, Any]] = []
    new_tags: list[dict[int, Tag]] = []
    resync: dict[int, tuple[dict[int, Tag], str]] = {}
    updated = 0
    for item in items:
        article = by_guid.get(item.guid) if item.guid else by_url.get(item.url)
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
        if changed or article.feed_id != feed.id:
            resync[article.id] = (tags, feed.url)
    session.flush()
    if new_rows:
        # One executemany instead of a unit-of-work flush per object (RETURNING in parameter
        # order would cost one statement per row on SQLite); the ids are read back by key.
        session.execute(insert(Article), new_rows)
        ids = _inserted_ids(session, new_rows)
        rows = [tag_row(i, t) for i, tags in zip(ids, new_tags, strict=True) for t in tags.values()]
        if rows:
            session.execute(insert(ArticleTopic), rows)
    sync_tags(session, resync)
    return len(new_rows), updated, len(items) - len(new_rows) - updated


def unique_items(items: Sequence[FeedItem]) -> tuple[list[FeedItem], list[Skipped]]:
    """The first of the items that share a guid (or, without guid, a URL); the others skipped."""
    guids: set[str] = set()
    urls: set[str] = set()
    kept: list[FeedItem] = []
    skipped: list[Skipped] = []
    for item in items:
        if (item.guid in guids) if item.guid else (item.url in urls):
            skipped.append(Skipped(item.guid or item.url, "repeated in the same feed"))
            continue
        if item.guid:
            guids.add(item.guid)
        urls.add(item.url)
        kept.append(item)
    return kept, skipped


def _inserted_ids(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The ids of just-inserted article rows, in their order (found by guid, else URL)."""
    by_guid: dict[str, int] = {}
    by_url: dict[str, int] = {}
    guids = [r["guid"] for r in rows if r["guid"]]
    urls = [r["url"] for r in rows if not r["guid"]]
    for chunk in _chunks(guids):
        query = select(Article.id, Article.guid).where(col(Article.guid).in_(chunk))
        by_guid.update((guid, id_) for id_, guid in session.exec(query) if id_ and guid)
    for chunk in _chunks(urls):
        query = (
            select(Article.id, Article.url)
            .where(col(Article.url).in_(chunk), col(Article.guid).is_(None))
            .order_by(col(Article.id))
        )
        by_url.update((url, id_) for id_, url in session.exec(query) if id_)  # newest wins
    return [by_guid[r["guid"]] if r["guid"] else by_url[r["url"]] for r in rows]


def _existing(
    session: Session, items: Sequence[FeedItem]
) -> tuple[dict[str, Article], dict[str, Article]]:
    guids = sorted({i.guid for i in items if i.guid})
    urls = sorted({i.url for i in items if not i.guid})
    by_guid: dict[str, Article] = {}
    by_url: dict[str, Article] = {}
    for chunk in _chunks(guids):
        for article in session.exec(select(Article).where(col(Article.guid).in_(chunk))):
            by_guid[article.guid or ""] = article
    for chunk in _chunks(urls):
        query = select(Article).where(col(Article.url).in_(chunk)).order_by(col(Article.id))
        for article in session.exec(query):
            by_url.setdefault(article.url, article)
    return by_guid, by_url


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


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
