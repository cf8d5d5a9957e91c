"""Listing stored articles: --since parsing, ordering and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from digest.catalog import articles
from digest.db.models import Article, ArticleTopic, TagReason, Topic
from digest.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=UTC)),
        ("2026-11-28T06:30", datetime(2026, 11, 28, 6, 30, tzinfo=UTC)),
        ("2026-11-28T06:30+03:00", datetime(2026, 11, 28, 3, 30, tzinfo=UTC)),
        ("2026-11-28T06:30:00Z", datetime(2026, 11, 28, 6, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert articles.parse_since(text) == expected


def test_parse_since_refuses_what_is_not_iso() -> None:
    with pytest.raises(InvalidInput, match="not an ISO date"):
        articles.parse_since("28/11/2026")


def test_list_newest_ingested_first_with_filters(session: Session) -> None:
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    topic = Topic(slug="economy", name="اقتصاد")
    session.add(topic)
    stored = [
        Article(
            guid=f"g{n}",
            url=f"https://news.example.org/{n}",
            title=f"خبر {n}",
            ingested_at=t0 + timedelta(hours=n),
        )
        for n in range(3)
    ]
    session.add_all(stored)
    session.flush()
    assert topic.id is not None and stored[1].id is not None
    session.add(
        ArticleTopic(
            article_id=stored[1].id, topic_id=topic.id, reason=TagReason.KEYWORD, detail="نفط"
        )
    )
    session.commit()

    assert [a.guid for a in articles.list_articles(session)] == ["g2", "g1", "g0"]
    assert [a.guid for a in articles.list_articles(session, topic="economy")] == ["g1"]
    since = t0 + timedelta(hours=1)
    assert [a.guid for a in articles.list_articles(session, since=since)] == ["g2", "g1"]
    assert [a.guid for a in articles.list_articles(session, limit=1)] == ["g2"]
    (described,) = articles.describe(session, [stored[1]])
    assert described["topics"] == [{"slug": "economy", "reason": "keyword", "detail": "نفط"}]
    assert described["ingested_at"] == "2026-11-28T01:00:00+00:00"
