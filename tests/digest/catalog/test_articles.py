"""Stored articles: --since parsing, listing order and filters, the views a digest shows,
and the editor's picker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from digest.catalog import articles
from digest.catalog.topics import add_topic, topic_views
from digest.catalog.views import TopicView
from digest.catalog.windows import edition_window
from digest.db.models import Article, ArticleTopic, TagReason, Topic
from subscribers.models import MailingList


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


def test_articles_as_a_digest_shows_them(session: Session) -> None:
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    economy = add_topic(session, slug="economy", name="اقتصاد", name_en="Economy")
    politics = add_topic(session, slug="politics", name="سياسة")
    both = Article(
        guid="both",
        url="https://news.example.org/both",
        title="خبر",
        body_html="<p>" + "ك" * 2300 + "</p>",
        ingested_at=t0,
    )
    session.add(both)
    session.flush()
    assert both.id is not None and economy.id is not None and politics.id is not None
    for topic_id in (politics.id, economy.id):
        session.add(ArticleTopic(article_id=both.id, topic_id=topic_id, reason=TagReason.FEED))
    session.commit()
    connection = session.connection()
    topics = topic_views(connection)
    assert topics[economy.id] == TopicView("economy", "اقتصاد", "Economy")
    views = articles.article_views(connection, [both.id, 999], topics)
    assert list(views) == [both.id]  # an unknown id is left out
    view = views[both.id]
    assert (view.title, view.summary, view.url) == ("خبر", "", "https://news.example.org/both")
    assert view.topics == ("economy", "politics")  # in topic id order
    assert view.minutes == 3


def test_the_editors_picker_holds_the_editions_window(session: Session) -> None:
    daily = MailingList(slug="daily", name="النشرة اليومية", cadence="daily")
    start, end = edition_window(daily, date(2026, 11, 28))
    for guid, ingested in (("before", start), ("first", start + timedelta(seconds=1)),
                           ("last", end), ("after", end + timedelta(seconds=1))):  # fmt: skip
        session.add(Article(guid=guid, url=f"https://news.example.org/{guid}", title=guid,
                            ingested_at=ingested))  # fmt: skip
    session.commit()
    picked = articles.edition_articles(session, daily, date(2026, 11, 28))
    assert [(a.guid, slugs) for a, slugs in picked] == [("last", []), ("first", [])]
