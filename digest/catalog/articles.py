"""Stored articles: find them by topic and ingestion time, and describe them with their tags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from digest.catalog.topics import get_topics
from digest.db.models import Article, ArticleTopic, Feed, Topic
from digest.errors import InvalidInput


def parse_since(text: str) -> datetime:
    """An ISO date or date-time as an aware UTC datetime; no offset means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise InvalidInput(
                f"--since {text!r} is not an ISO date or date-time (e.g. 2026-11-28 or "
                "2026-11-28T06:00+03:00)"
            ) from None
        parsed = datetime(day.year, day.month, day.day)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def list_articles(
    session: Session,
    *,
    topic: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Article]:
    """The most recently ingested articles first; `since` filters on ingestion time."""
    query = select(Article)
    if topic is not None:
        (found,) = get_topics(session, [topic])
        query = query.where(
            col(Article.id).in_(
                select(ArticleTopic.article_id).where(ArticleTopic.topic_id == found.id)
            )
        )
    if since is not None:
        query = query.where(col(Article.ingested_at) >= since)
    query = query.order_by(col(Article.ingested_at).desc(), col(Article.id).desc()).limit(limit)
    return list(session.exec(query))


def tags_of(session: Session, article_ids: Sequence[int]) -> dict[int, list[dict[str, str]]]:
    """article id -> its topics, each {"slug", "reason", "detail"}, by slug."""
    found: dict[int, list[dict[str, str]]] = {}
    if not article_ids:
        return found
    rows = session.exec(
        select(ArticleTopic, Topic.slug)
        .join(Topic, col(Topic.id) == col(ArticleTopic.topic_id))
        .where(col(ArticleTopic.article_id).in_(article_ids))
        .order_by(col(Topic.slug))
    )
    for tag, slug in rows:
        found.setdefault(tag.article_id, []).append(
            {"slug": slug, "reason": tag.reason, "detail": tag.detail}
        )
    return found


def describe(session: Session, articles: Sequence[Article]) -> list[dict[str, object]]:
    """Articles as plain dicts (for --json), with their feed's URL and their tags."""
    ids = [a.id for a in articles if a.id is not None]
    tags = tags_of(session, ids)
    feed_ids = {a.feed_id for a in articles if a.feed_id is not None}
    feeds = {f.id: f.url for f in session.exec(select(Feed).where(col(Feed.id).in_(feed_ids)))}
    return [
        {
            "id": a.id,
            "guid": a.guid,
            "url": a.url,
            "title": a.title,
            "summary": a.summary,
            "image_url": a.image_url,
            "author": a.author,
            "language": a.language,
            "categories": a.categories,
            "published_at": _iso(a.published_at),
            "ingested_at": _iso(a.ingested_at),
            "updated_at": _iso(a.updated_at),
            "feed": feeds.get(a.feed_id),
            "topics": tags.get(a.id or 0, []),
        }
        for a in articles
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
