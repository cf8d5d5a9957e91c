"""Stored articles: find them by topic and ingestion time, describe them with their tags,
and read them as the views a digest shows (the one place an `ArticleView` is built)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from digest.catalog.topics import get_topics
from digest.catalog.views import ArticleView, TopicView
from digest.catalog.windows import edition_window
from digest.db.models import Article, ArticleTopic, Feed, Topic
from digest.db.tables import ARTICLE, ARTICLE_TOPIC
from subscribers.models import MailingList

# What an `ArticleView` is read from: select these (and more, after them) and pass the row
# to `article_view`.
VIEW_COLUMNS = (
    ARTICLE.c.id,
    ARTICLE.c.title,
    ARTICLE.c.url,
    ARTICLE.c.summary,
    ARTICLE.c.image_url,
    ARTICLE.c.published_at,
    func.length(ARTICLE.c.body_html).label("body_chars"),
)


def article_view(row: Row[*tuple[Any, ...]], topics: Iterable[str] = ()) -> ArticleView:
    """The view of a row selected with `VIEW_COLUMNS`; `topics`: its slugs, first one first."""
    return ArticleView(
        id=row.id,
        title=row.title,
        url=row.url,
        summary=row.summary or "",
        image_url=row.image_url,
        published_at=row.published_at,
        topics=tuple(topics),
        body_chars=row.body_chars or 0,
    )


def article_topic_ids(
    connection: Connection, condition: ColumnElement[bool]
) -> dict[int, tuple[int, ...]]:
    """article id -> its topic ids (in id order), for the articles meeting `condition`."""
    found: dict[int, list[int]] = {}
    for article_id, topic_id in connection.execute(
        sa_select(ARTICLE_TOPIC.c.article_id, ARTICLE_TOPIC.c.topic_id)
        .join(ARTICLE, ARTICLE.c.id == ARTICLE_TOPIC.c.article_id)
        .where(condition)
        .order_by(ARTICLE_TOPIC.c.article_id, ARTICLE_TOPIC.c.topic_id)
    ):
        found.setdefault(article_id, []).append(topic_id)
    return {article_id: tuple(ids) for article_id, ids in found.items()}


def article_views(
    connection: Connection, ids: Iterable[int], topics: Mapping[int, TopicView]
) -> dict[int, ArticleView]:
    """Articles by id as a digest shows them, with their topic slugs in topic id order (the
    segment's topic order places each one); ids of deleted articles are left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    chosen = ARTICLE.c.id.in_(wanted)
    tags = article_topic_ids(connection, chosen)
    rows = connection.execute(sa_select(*VIEW_COLUMNS).where(chosen))
    return {
        row.id: article_view(row, (topics[t].slug for t in tags.get(row.id, ()) if t in topics))
        for row in rows
    }


def edition_articles(
    session: Session, mailing_list: MailingList, day: date, *, limit: int = 200
) -> list[tuple[Article, list[str]]]:
    """The articles the list's edition of `day` can hold (newest first), with their topic
    slugs: the editor's article picker."""
    start, end = edition_window(mailing_list, day)
    articles = list(
        session.exec(
            select(Article)
            .where(col(Article.ingested_at) > start, col(Article.ingested_at) <= end)
            .order_by(col(Article.ingested_at).desc(), col(Article.id).desc())
            .limit(limit)
        )
    )
    tags = tags_of(session, [a.id for a in articles if a.id is not None])
    return [(a, [t["slug"] for t in tags.get(a.id or 0, [])]) for a in articles]


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
