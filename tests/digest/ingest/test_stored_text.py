"""Text from feeds is stored without NUL, control or bidi override characters, and capped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from digest.config import Settings
from digest.db.engine import session_scope
from digest.db.models import Article, Feed
from digest.ingest import feeds
from digest.ingest.documents import (
    AUTHOR_CHARS,
    CATEGORY_CHARS,
    MAX_CATEGORIES,
    STORED_SUMMARY_CHARS,
    STORED_TITLE_CHARS,
    parse_document,
)
from digest.ingest.matcher import TopicIndex
from digest.ingest.pipeline import FeedStatus, ingest, store_items
from tests.helpers.feed_docs import json_feed, rss
from tests.helpers.feed_server import FeedServer, Route, serving

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
HOSTILE = "\x00\x01\x1b[2J\x85\x9b\u202e\u2066\u2069"
_numbers = count(1)

# Any Unicode (surrogates cannot be encoded), the controls and bidi marks made frequent.
ANY_TEXT = st.text(
    st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(HOSTILE + "\t\n\r"))
)
# What XML 1.0 can carry at all: no C0 controls but tab and line breaks, no U+FFFE/U+FFFF
# (a document with them is refused as malformed XML, nothing stored). C1 and bidi stay.
XML_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(map(chr, range(0x20))) + "\ufffe\uffff",
    )
    | st.sampled_from("\x85\x9b\u202e\u2066\u2069\t\n")
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as running:
        yield running


def _store(engine: Engine, document: bytes) -> list[Article]:
    """Parse `document` and store its items into a feed of its own; what was stored."""
    parsed = parse_document(document, content_type=None, location="https://a.example/", now=NOW)
    with session_scope(engine) as session:
        feed = feeds.add_feed(session, url=f"https://a.example/{next(_numbers)}")
        store_items(session, feed, parsed.items, TopicIndex([]), {}, NOW)
        feed_id = feed.id
    with Session(engine) as session:
        return list(session.exec(select(Article).where(col(Article.feed_id) == feed_id)))


def _assert_clean(article: Article) -> None:
    for line in (article.title, article.summary, article.author or "", *article.categories):
        assert not UNSAFE_LINE.search(line), line
    for text in (article.body_html, article.guid or "", article.url, article.image_url or ""):
        assert not UNSAFE.search(text), text
    assert len(article.title) <= STORED_TITLE_CHARS + 1
    assert len(article.summary) <= STORED_SUMMARY_CHARS + 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=ANY_TEXT, summary=ANY_TEXT, author=ANY_TEXT, category=ANY_TEXT, guid=ANY_TEXT)
def test_any_text_of_a_json_feed_is_stored_clean(
    engine: Engine, title: str, summary: str, author: str, category: str, guid: str
) -> None:
    item = {
        "id": f"{guid}-{next(_numbers)}",
        "url": "https://a.example/item",
        "title": title or "t",
        "summary": summary,
        "content_html": f"<p>{summary}</p><img src='https://a.example/i.png' alt='{author}'>",
        "authors": [{"name": author}],
        "tags": [category],
    }
    for article in _store(engine, json_feed([item], title=title)):
        _assert_clean(article)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=XML_TEXT, summary=XML_TEXT, author=XML_TEXT, category=XML_TEXT)
def test_any_text_of_an_rss_feed_is_stored_clean(
    engine: Engine, title: str, summary: str, author: str, category: str
) -> None:
    item = {
        "title": title or "t",
        "link": "https://a.example/item",
        "guid": f"{title}-{next(_numbers)}",
        "description": summary,
        "content": f"<p>{summary}</p><img src='https://a.example/i.png' alt='{author}'>",
        "author": author,
        "categories": [category],
    }
    for article in _store(engine, rss([item], title=title)):
        _assert_clean(article)


def test_controls_and_bidi_overrides_are_removed_from_every_field(engine: Engine) -> None:
    item = {
        "id": "g\x00-1",
        "url": "https://a.example/\x00story",
        "title": "عنوان\u202egnp.exe\x00 خبر",
        "summary": "ملخص\x1b[2J\u2066",
        "content_html": "<p>نص\x00\u202e</p><img src='https://a.example/i.png' alt='x\u202egpj'>",
        "authors": [{"name": "كاتب\x85\u2069"}],
        "tags": ["تصنيف\x9b"],
    }
    (article,) = _store(engine, json_feed([item]))
    assert article.title == "عنوانgnp.exe خبر"
    assert article.summary == "ملخص[2J"
    assert (article.author, article.categories, article.guid) == ("كاتب", ["تصنيف"], "g-1")
    assert "\u202e" not in article.body_html and 'alt="xgpj"' in article.body_html
    _assert_clean(article)


def test_long_texts_are_capped_at_storage(engine: Engine) -> None:
    word = "ك" * 100_000  # one word: cutting between words alone kept it whole
    item = {
        "id": "long",
        "url": "https://a.example/long",
        "title": word,
        "summary": word,
        "content_html": "<p>نص</p>",
        "authors": [{"name": word}],
        "tags": [f"{n}{word}" for n in range(200)],
    }
    (article,) = _store(engine, json_feed([item]))
    assert len(article.title) == STORED_TITLE_CHARS + 1 and article.title.endswith("…")
    assert len(article.summary) == STORED_SUMMARY_CHARS + 1
    assert len(article.author or "") == AUTHOR_CHARS
    assert len(article.categories) == MAX_CATEGORIES
    assert {len(c) for c in article.categories} == {CATEGORY_CHARS}


def test_a_nul_in_a_feed_title_stores_fine(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    # PostgreSQL refuses a NUL in text ("invalid byte sequence"): the run failed there.
    item = {"id": "n\x00ul", "url": "https://a.example/nul", "title": "خبر\x00 عاجل"}
    server.routes["/feed"] = Route(
        json_feed([item], title="أخبار\x00"), content_type="application/feed+json"
    )
    with session_scope(engine) as session:
        feeds.add_feed(session, url=server.url("/feed"))
    (report,) = ingest(engine, settings.ingest).feeds
    assert (report.status, report.new) == (FeedStatus.FETCHED, 1)
    with Session(engine) as session:
        (article,) = session.exec(select(Article))
        assert (article.title, article.guid) == ("خبر عاجل", "nul")
        assert [f.title for f in session.exec(select(Feed))] == ["أخبار"]
