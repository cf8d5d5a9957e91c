"""Stored tags of articles: write them, bring them up to date, re-tag the whole archive."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from digest.db.models import Article, ArticleTopic, Feed, FeedTopic, TagReason, Topic
from digest.ingest.matcher import Tag, TopicIndex

CHUNK = 500  # ids per IN (…) query


def feed_defaults(session: Session) -> dict[int, dict[int, str]]:
    """feed id -> {topic id: feed URL} of the feed's default topics."""
    rows = session.exec(
        select(FeedTopic.feed_id, FeedTopic.topic_id, Feed.url).join(
            Feed, col(Feed.id) == col(FeedTopic.feed_id)
        )
    )
    found: dict[int, dict[int, str]] = {}
    for feed_id, topic_id, url in rows:
        found.setdefault(feed_id, {})[topic_id] = url
    return found


def tag_row(article_id: int, tag: Tag) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "topic_id": tag.topic_id,
        "reason": str(tag.reason),
        "detail": tag.detail[:500],
    }


def sync_tags(session: Session, wanted: Mapping[int, tuple[Mapping[int, Tag], str | None]]) -> int:
    """Make the stored tags of each article those wanted; returns how many articles changed.

    `wanted` maps an article id to (its tags, the URL of the feed that gave them). A default
    topic given by another feed (the same article in two feeds) is kept.
    """
    current: dict[int, dict[int, ArticleTopic]] = {}
    for chunk in _chunks(sorted(wanted)):
        query = select(ArticleTopic).where(col(ArticleTopic.article_id).in_(chunk))
        for row in session.exec(query):
            current.setdefault(row.article_id, {})[row.topic_id] = row
    changed = 0
    rows: list[dict[str, Any]] = []
    for article_id, (tags, feed_url) in wanted.items():
        have = current.get(article_id, {})
        want = {t: (str(tag.reason), tag.detail[:500]) for t, tag in tags.items()}
        for topic_id, row in have.items():
            if row.reason == TagReason.FEED and row.detail != feed_url:
                want.setdefault(topic_id, (row.reason, row.detail))
        stale = [t for t, row in have.items() if want.get(t) != (row.reason, row.detail)]
        missing = [t for t in want if t not in have or t in stale]
        if not stale and not missing:
            continue
        changed += 1
        if stale:
            session.execute(
                delete(ArticleTopic).where(
                    col(ArticleTopic.article_id) == article_id,
                    col(ArticleTopic.topic_id).in_(stale),
                )
            )
        rows += [
            {"article_id": article_id, "topic_id": t, "reason": want[t][0], "detail": want[t][1]}
            for t in missing
        ]
    if rows:
        session.execute(insert(ArticleTopic), rows)
    return changed


def retag(session: Session, *, batch: int = 1000) -> int:
    """Re-tag every stored article with the current topics; returns how many changed.

    Uses what was stored (categories, title, summary) and the feeds' current default topics.
    """
    index = TopicIndex(session.exec(select(Topic)))
    defaults = feed_defaults(session)
    feed_urls = {f.id: f.url for f in session.exec(select(Feed))}
    changed = 0
    last_id = 0
    while True:
        query = select(Article).where(col(Article.id) > last_id).order_by(col(Article.id))
        articles = list(session.exec(query.limit(batch)))
        if not articles:
            return changed
        last_id = articles[-1].id or last_id
        wanted: dict[int, tuple[Mapping[int, Tag], str | None]] = {}
        for article in articles:
            assert article.id is not None
            tags = index.tags(
                feed_topics=defaults.get(article.feed_id or 0, {}),
                categories=article.categories,
                title=article.title,
                summary=article.summary,
            )
            wanted[article.id] = (tags, feed_urls.get(article.feed_id))
        changed += sync_tags(session, wanted)
        session.flush()
        session.expunge_all()  # keep memory flat over a large archive


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
