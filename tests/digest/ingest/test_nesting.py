"""Documents nested too deep: a clear error for that feed only, never a crash of the run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from digest.config import Settings
from digest.db.engine import session_scope
from digest.db.models import Article
from digest.ingest import feeds
from digest.ingest import parallel as parsing
from digest.ingest.documents import FeedError, parse_document
from digest.ingest.nesting import html_too_deep, json_too_deep, xml_too_deep
from digest.ingest.pipeline import FeedStatus, ingest
from tests.helpers.feed_docs import rss
from tests.helpers.feed_server import FeedServer, Route, serving

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
GOOD = rss([{"title": "خبر سليم", "link": "https://news.example.org/ok", "guid": "ok"}])


def _deep_xml(depth: int) -> bytes:
    inner = "<x>" * depth + "</x>" * depth
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>a</title><link>https://a.example/1</link>{inner}</item></channel></rss>"
    ).encode()


def _deep_json(depth: int) -> bytes:
    return (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1",'
        f' "url": "https://a.example/1", "title": "a", "x": {"[" * depth}{"]" * depth}}}]}}'
    ).encode()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as running:
        yield running


def test_depth_measures() -> None:
    assert not xml_too_deep(_deep_xml(50), 100)
    assert xml_too_deep(_deep_xml(200), 100)
    assert not json_too_deep(_deep_json(50), 100)
    assert json_too_deep(_deep_json(200), 100)
    # Brackets inside strings do not count, even an escaped quote before them.
    assert not json_too_deep(b'{"a": "[[[[[[\\"[[[[[[[[[[[", "b": [1]}', 3)
    assert not html_too_deep("<p>a" * 500 + "<br>" * 500, 100)  # siblings, not nesting
    assert html_too_deep("<div>" * 101, 100)
    assert not html_too_deep("<div></div>" * 500, 100)


@pytest.mark.parametrize("document", [_deep_xml(5000), _deep_json(100_000)])
def test_a_document_nested_too_deep_is_a_clear_error(document: bytes) -> None:
    # The JSON one stopped the whole run with a RecursionError before.
    with pytest.raises(FeedError, match=r"nests deeper than 100 levels \(see ingest.max_depth\)"):
        parse_document(document, content_type=None, location="https://a.example/", now=NOW)


def test_an_item_with_html_nested_too_deep_is_skipped_and_the_others_kept() -> None:
    deep = "<div>" * 3000 + "نص" + "</div>" * 3000  # took the sanitiser minutes at 100,000
    document = rss(
        [
            {"title": "عميق", "link": "https://a.example/deep", "description": deep},
            {"title": "عادي", "link": "https://a.example/ok", "description": "<p>نص</p>"},
        ]
    )
    parsed = parse_document(document, content_type=None, location="https://a.example/", now=NOW)
    assert [i.title for i in parsed.items] == ["عادي"]
    assert [s.reason for s in parsed.skipped] == ["its HTML nests deeper than 100 levels"]


def test_deep_documents_fail_their_feed_only(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/xml"] = Route(_deep_xml(5000))
    server.routes["/json"] = Route(_deep_json(100_000), content_type="application/feed+json")
    server.routes["/ok"] = Route(GOOD)
    with session_scope(engine) as session:
        for path in ("/xml", "/json", "/ok"):
            feeds.add_feed(session, url=server.url(path))
    report = ingest(engine, settings.ingest)
    assert [f.status for f in report.feeds] == [
        FeedStatus.FAILED,
        FeedStatus.FAILED,
        FeedStatus.FETCHED,
    ]
    with Session(engine) as session:
        errors = [f.last_error for f in feeds.all_feeds(session)]
        assert errors[2] is None
        assert all("nests deeper than 100 levels" in (e or "") for e in errors[:2])
        assert [a.guid for a in session.exec(select(Article).order_by(col(Article.id)))] == ["ok"]


def test_a_big_deep_document_is_refused_by_the_splitter_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [{"title": f"خبر {n}", "link": f"https://a.example/{n}"} for n in range(200)]
    document = rss(items).replace(b"</channel>", b"<x>" * 300 + b"</x>" * 300 + b"</channel>")
    monkeypatch.setattr(parsing, "parse_document", lambda *a, **k: pytest.fail("parsed whole"))
    with parsing.ParseWorkers(2) as workers:
        assert workers.executor() is not None  # one thread here: the split path is taken
        with pytest.raises(FeedError, match="nests deeper than 100 levels"):
            parsing.parse_parts(
                document,
                content_type=None,
                location="https://a.example/",
                now=NOW,
                workers=workers,
                chunking=parsing.Chunking(min_bytes=0, chunk_bytes=2_000),
            )


def test_html_depth_within_the_limit_is_kept() -> None:
    body = "<div>" * 40 + "نص" + "</div>" * 40
    document = rss([{"title": "ت", "link": "https://a.example/1", "description": body}])
    parsed = parse_document(document, content_type=None, location="https://a.example/", now=NOW)
    assert [i.title for i in parsed.items] == ["ت"]
    assert escape("نص") in parsed.items[0].body_html
