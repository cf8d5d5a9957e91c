"""Article identity (feed, guid), else the URL within the feed: feeds never overwrite each other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.config import Settings
from digest.db.engine import alembic_config, make_engine, session_scope
from digest.db.models import Article
from digest.ingest import feeds
from digest.ingest.pipeline import ingest
from tests.helpers.feed_docs import rss
from tests.helpers.feed_server import FeedServer, Route, serving


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as running:
        yield running


def _add(engine: Engine, url: str) -> int:
    with session_scope(engine) as session:
        feed = feeds.add_feed(session, url=url)
        assert feed.id is not None
        return feed.id


def _stored(engine: Engine) -> list[tuple[int | None, str | None, str, str]]:
    with Session(engine) as session:
        query = select(Article).order_by(col(Article.id))
        return [(a.feed_id, a.guid, a.url, a.title) for a in session.exec(query)]


def test_two_feeds_with_one_guid_keep_an_article_each_run_after_run(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/a"] = Route(
        rss([{"title": "خبر أ", "link": "https://a.example/1", "guid": "1"}])
    )
    server.routes["/b"] = Route(
        rss([{"title": "خبر ب", "link": "https://b.example/1", "guid": "1"}])
    )
    a, b = _add(engine, server.url("/a")), _add(engine, server.url("/b"))
    expected = [(a, "1", "https://a.example/1", "خبر أ"), (b, "1", "https://b.example/1", "خبر ب")]
    first = ingest(engine, settings.ingest)
    assert [(f.new, f.updated) for f in first.feeds] == [(1, 0), (1, 0)]
    assert _stored(engine) == expected
    for _ in range(3):  # was: each run, each feed overwrote the other's story
        again = ingest(engine, settings.ingest)
        assert [(f.new, f.updated, f.unchanged) for f in again.feeds] == [(0, 0, 1), (0, 0, 1)]
        assert _stored(engine) == expected


def test_same_url_without_guid_in_two_feeds_is_an_article_of_each(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/a"] = Route(rss([{"title": "من أ", "link": "https://x.example/story"}]))
    server.routes["/b"] = Route(rss([{"title": "من ب", "link": "https://x.example/story"}]))
    a, b = _add(engine, server.url("/a")), _add(engine, server.url("/b"))
    for _ in range(3):
        ingest(engine, settings.ingest)
        assert _stored(engine) == [
            (a, None, "https://x.example/story", "من أ"),
            (b, None, "https://x.example/story", "من ب"),
        ]


def test_a_feed_removed_and_added_again_takes_its_articles_back(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    items = [
        {"title": "بمعرف", "link": "https://a.example/1", "guid": "g1"},
        {"title": "بلا معرف", "link": "https://a.example/2"},
    ]
    server.routes["/a"] = Route(rss(items))
    server.routes["/b"] = Route(
        rss([{"title": "غريب", "link": "https://b.example/9", "guid": "g1"}])
    )
    _add(engine, server.url("/a"))
    ingest(engine, settings.ingest)
    with session_scope(engine) as session:
        feeds.remove_feed(session, server.url("/a"))
    assert [row[0] for row in _stored(engine)] == [None, None]
    b = _add(engine, server.url("/b"))  # same guid, another story: not an orphan of its own
    again = _add(engine, server.url("/a"))
    report = ingest(engine, settings.ingest)
    assert [(f.url[-2:], f.new) for f in report.feeds] == [("/b", 1), ("/a", 0)]
    assert _stored(engine) == [
        (again, "g1", "https://a.example/1", "بمعرف"),
        (again, None, "https://a.example/2", "بلا معرف"),
        (b, "g1", "https://b.example/9", "غريب"),
    ]


def test_one_feed_cannot_store_a_guid_twice(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        feed = feeds.add_feed(session, url="https://a.example/rss")
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        for title in ("x", "y"):
            session.add(Article(feed_id=feed.id, guid="g", url="https://a.example/", title=title))
            session.flush()


def test_migration_keeps_articles_and_lets_feeds_share_a_guid(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0006")
        with engine.begin() as connection:
            for n in (1, 2):
                connection.execute(
                    text("INSERT INTO feed (url, title, created_at) VALUES (:u, '', :t)"),
                    {"u": f"https://f{n}.example/rss", "t": "2026-11-28 06:00:00"},
                )
            connection.execute(
                text(
                    "INSERT INTO article (feed_id, guid, url, title, summary, body_html,"
                    " categories, ingested_at) VALUES (1, 'g', 'https://f1.example/1', 'old',"
                    " '', '', '[]', '2026-11-28 06:00:00')"
                )
            )
        command.upgrade(config, "0007")
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT feed_id, guid, title FROM article")).all()
            assert [tuple(r) for r in rows] == [(1, "g", "old")]
            connection.execute(
                text(
                    "INSERT INTO article (feed_id, guid, url, title, summary, body_html,"
                    " categories, ingested_at) VALUES (2, 'g', 'https://f2.example/1', 'new',"
                    " '', '', '[]', '2026-11-28 06:00:00')"
                )
            )
        with pytest.raises(RuntimeError, match="several articles share the guid 'g'"):
            command.downgrade(config, "0006")
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM article WHERE feed_id = 2"))
        command.downgrade(config, "0006")
        command.upgrade(config, "0007")
    finally:
        engine.dispose()
