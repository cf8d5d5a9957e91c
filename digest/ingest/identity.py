"""Which stored article an item is: (feed, guid), else its canonical URL within the feed.

Two feeds may use the same guid (or link to the same page): each has its own article, so one
feed's item never overwrites another's. An article whose feed was removed (`feed_id` NULL)
is taken back by a feed whose item has its guid and URL (or, without guid, its URL): a feed
removed and added again does not make its old items new.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from digest.db.models import Article
from digest.ingest.article_tags import CHUNK
from digest.ingest.documents import FeedItem, Skipped


@dataclass
class Seen:
    """The identities met so far in one document (for `unique_items` over its parts)."""

    guids: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)


def unique_items(
    items: Sequence[FeedItem], seen: Seen | None = None
) -> tuple[list[FeedItem], list[Skipped]]:
    """The first of the items that share a guid (or, without guid, a URL); the others skipped.

    `seen` carries what earlier parts of the same document had."""
    if seen is None:
        seen = Seen()
    guids, urls = seen.guids, seen.urls
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


@dataclass
class Known:
    """The stored articles of some items of one feed, by guid and by URL."""

    by_guid: dict[str, Article] = field(default_factory=dict)
    by_url: dict[str, Article] = field(default_factory=dict)

    def article(self, item: FeedItem) -> Article | None:
        return self.by_guid.get(item.guid) if item.guid else self.by_url.get(item.url)


def known_articles(session: Session, feed_id: int, items: Sequence[FeedItem]) -> Known:
    """The feed's stored articles for `items`; for the others, orphans they may take back."""
    known = Known()
    guids = sorted({i.guid for i in items if i.guid})
    urls = sorted({i.url for i in items if not i.guid})
    for chunk in _chunks(guids):
        query = select(Article).where(col(Article.feed_id) == feed_id, col(Article.guid).in_(chunk))
        for article in session.exec(query):
            known.by_guid[article.guid or ""] = article
    for chunk in _chunks(urls):
        query = (
            select(Article)
            .where(col(Article.feed_id) == feed_id, col(Article.url).in_(chunk))
            .order_by(col(Article.id))
        )
        for article in session.exec(query):
            known.by_url.setdefault(article.url, article)
    missing = [i for i in items if known.article(i) is None]
    if missing and _has_orphans(session):
        _orphans(session, missing, known)
    return known


def _has_orphans(session: Session) -> bool:
    query = select(Article.id).where(col(Article.feed_id).is_(None)).limit(1)
    return session.exec(query).first() is not None


def _orphans(session: Session, items: Sequence[FeedItem], known: Known) -> None:
    """Articles of a removed feed with the items' guid and URL (or URL, without guid)."""
    urls_of = {i.guid: i.url for i in items if i.guid}
    for chunk in _chunks(sorted(urls_of)):
        query = (
            select(Article)
            .where(col(Article.feed_id).is_(None), col(Article.guid).in_(chunk))
            .order_by(col(Article.id))
        )
        for article in session.exec(query):
            if article.guid and urls_of[article.guid] == article.url:
                known.by_guid.setdefault(article.guid, article)
    urls = sorted({i.url for i in items if not i.guid})
    for chunk in _chunks(urls):
        query = (
            select(Article)
            .where(
                col(Article.feed_id).is_(None),
                col(Article.guid).is_(None),
                col(Article.url).in_(chunk),
            )
            .order_by(col(Article.id))
        )
        for article in session.exec(query):
            known.by_url.setdefault(article.url, article)


def inserted_ids(session: Session, feed_id: int, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The ids of the feed's just-inserted article rows, in their order (by guid, else URL)."""
    by_guid: dict[str, int] = {}
    by_url: dict[str, int] = {}
    guids = [r["guid"] for r in rows if r["guid"]]
    urls = [r["url"] for r in rows if not r["guid"]]
    for chunk in _chunks(guids):
        query = select(Article.id, Article.guid).where(
            col(Article.feed_id) == feed_id, col(Article.guid).in_(chunk)
        )
        by_guid.update((guid, id_) for id_, guid in session.exec(query) if id_ and guid)
    for chunk in _chunks(urls):
        query = (
            select(Article.id, Article.url)
            .where(
                col(Article.feed_id) == feed_id,
                col(Article.url).in_(chunk),
                col(Article.guid).is_(None),
            )
            .order_by(col(Article.id))
        )
        by_url.update((url, id_) for id_, url in session.exec(query) if id_)  # newest wins
    return [by_guid[r["guid"]] if r["guid"] else by_url[r["url"]] for r in rows]


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
