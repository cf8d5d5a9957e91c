"""Ingest from a real local HTTP server: formats, conditional GET, duplicates, updates,
and every kind of bad feed (recorded, others go on, stored articles untouched)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest import samples
from digest.catalog import topics
from digest.catalog.articles import list_articles, tags_of
from digest.config import IngestSettings, Settings
from digest.db.engine import session_scope
from digest.db.models import Article, Feed, Topic
from digest.ingest import feeds
from digest.ingest import parallel as parsing
from digest.ingest import pipeline as ingest_module
from digest.ingest.article_tags import retag
from digest.ingest.documents import ParsedFeed, parse_document
from digest.ingest.parallel import SplitFailed
from digest.ingest.pipeline import FeedStatus, IngestReport, ingest
from tests.helpers.feed_docs import atom, json_feed, rss
from tests.helpers.feed_server import FeedServer, Route, serving

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serving() as running:
        yield running


@pytest.fixture
def make_topics(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        made = [
            topics.add_topic(
                session, slug="economy", name="اقتصاد", keywords=["نفط"], aliases=["Business"]
            ),
            topics.add_topic(session, slug="sports", name="رياضة", keywords=["منتخب"]),
            topics.add_topic(session, slug="politics", name="سياسة", keywords=["انتخابات"]),
        ]
    return {t.slug: t.id for t in made if t.id is not None}


def _add(engine: Engine, url: str, *slugs: str) -> None:
    with session_scope(engine) as session:
        feeds.add_feed(session, url=url, topics=topics.get_topics(session, list(slugs)))


def _run(
    engine: Engine, settings: IngestSettings, at: datetime = T0, **kwargs: object
) -> IngestReport:
    return ingest(engine, settings, clock=lambda: at, **kwargs)  # type: ignore[arg-type]


def _articles(session: Session) -> list[Article]:
    return list(session.exec(select(Article).order_by(col(Article.id))))


def _feed(session: Session, url: str) -> Feed:
    return feeds.get_feed(session, url)


def _item(n: int, **extra: object) -> dict[str, object]:
    return {
        "title": f"خبر رقم {n}",
        "link": f"https://news.example.org/a/{n}",
        "guid": f"g-{n}",
        "date": "Sat, 28 Nov 2026 05:00:00 GMT",
        "description": f"<p>ملخص الخبر {n}</p>",
        **extra,
    }


def test_rss_atom_and_json_feed_over_http(
    engine: Engine, settings: Settings, server: FeedServer, make_topics: dict[str, int]
) -> None:
    server.routes["/rss"] = Route(rss([_item(1, categories=["الإقتصاد"])]))
    server.routes["/atom"] = Route(
        atom(
            [
                {
                    "title": "المنتخب يفوز",
                    "link": "https://news.example.org/s/1",
                    "id": "atom-1",
                    "updated": "2026-11-28T07:00:00Z",
                    "summary": "فوز كبير",
                }
            ]
        ),
        content_type="application/atom+xml",
    )
    server.routes["/json"] = Route(
        json_feed(
            [
                {
                    "id": "json-1",
                    "url": "https://news.example.org/p/1",
                    "title": "موعد الانتخابات",
                    "content_html": "<p>حدد البرلمان الموعد</p>",
                }
            ]
        ),
        content_type="application/feed+json",
    )
    for path in ("/rss", "/atom", "/json"):
        _add(engine, server.url(path))

    report = _run(engine, settings.ingest)

    assert [(f.status, f.new) for f in report.feeds] == [(FeedStatus.FETCHED, 1)] * 3
    with Session(engine) as session:
        stored = _articles(session)
        assert [a.guid for a in stored] == ["g-1", "atom-1", "json-1"]
        assert all(a.ingested_at == T0 for a in stored)
        tags = tags_of(session, [a.id for a in stored if a.id])
        assert [[t["slug"] for t in tags[a.id or 0]] for a in stored] == [
            ["economy"],
            ["sports"],
            ["politics"],
        ]
        assert _feed(session, server.url("/rss")).title == "أخبار الاختبار"
    assert server.requests_to("/rss")[0].headers["user-agent"] == settings.ingest.user_agent


def test_second_fetch_is_conditional_and_a_304_stores_nothing(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/etag"] = Route(rss([_item(1)]), etag='"v1"')
    server.routes["/lm"] = Route(rss([_item(2)]), last_modified="Sat, 28 Nov 2026 06:00:00 GMT")
    _add(engine, server.url("/etag"))
    _add(engine, server.url("/lm"))
    first = _run(engine, settings.ingest)
    assert [f.new for f in first.feeds] == [1, 1]

    second = _run(engine, settings.ingest, at=T0 + timedelta(hours=1))

    assert [f.status for f in second.feeds] == [FeedStatus.NOT_MODIFIED] * 2
    assert second.new == 0 and not second.failed
    assert "if-none-match" not in server.requests_to("/etag")[0].headers
    assert server.requests_to("/etag")[1].headers["if-none-match"] == '"v1"'
    assert server.requests_to("/lm")[1].headers["if-modified-since"] == (
        "Sat, 28 Nov 2026 06:00:00 GMT"
    )
    with Session(engine) as session:
        assert len(_articles(session)) == 2
        feed = _feed(session, server.url("/etag"))
        assert feed.etag == '"v1"' and feed.last_error is None
        assert feed.last_fetched_at == T0 + timedelta(hours=1)


def test_same_item_twice_is_one_article(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    # Same guid twice; and, without guid, the same link with other tracking parameters.
    no_guid = {"title": "بلا معرف", "link": "https://news.example.org/x?utm_source=a"}
    server.routes["/f"] = Route(rss([_item(1), _item(1), no_guid]))
    _add(engine, server.url("/f"))
    first = _run(engine, settings.ingest)
    assert (first.new, [s.reason for s in first.feeds[0].skipped]) == (
        2,
        ["repeated in the same feed"],
    )

    server.routes["/f"] = Route(
        rss([{**no_guid, "link": "https://news.example.org/x?utm_medium=b"}, _item(1)])
    )
    second = _run(engine, settings.ingest, at=T0 + timedelta(hours=1))

    assert (second.new, second.feeds[0].updated, second.feeds[0].unchanged) == (0, 0, 2)
    with Session(engine) as session:
        assert [a.url for a in _articles(session)] == [
            "https://news.example.org/a/1",
            "https://news.example.org/x",
        ]


def test_updated_item_updates_the_article_but_is_not_new_again(
    engine: Engine, settings: Settings, server: FeedServer, make_topics: dict[str, int]
) -> None:
    server.routes["/f"] = Route(rss([_item(1)]))
    _add(engine, server.url("/f"))
    _run(engine, settings.ingest)
    later = T0 + timedelta(hours=3)
    server.routes["/f"] = Route(
        rss([_item(1, title="خبر رقم 1 (محدّث): النفط يرتفع", description="<p>ملخص جديد</p>")])
    )

    report = _run(engine, settings.ingest, at=later)

    assert (report.new, report.feeds[0].updated) == (0, 1)
    with Session(engine) as session:
        (article,) = _articles(session)
        assert article.title == "خبر رقم 1 (محدّث): النفط يرتفع"
        assert article.summary == "ملخص جديد"
        assert article.ingested_at == T0  # never changes
        assert article.updated_at == later
        assert list_articles(session, since=T0 + timedelta(hours=1)) == []  # not new for digests
        assert [t["slug"] for t in tags_of(session, [article.id or 0])[article.id or 0]] == [
            "economy"  # the edit added a keyword: tags follow
        ]


def test_same_item_in_two_feeds_is_an_article_of_each_with_its_feeds_topics(
    engine: Engine, settings: Settings, server: FeedServer, make_topics: dict[str, int]
) -> None:
    # An item's identity is (feed, guid) (issue 14): each feed keeps its own article.
    server.routes["/eco"] = Route(rss([_item(1)]))
    server.routes["/sport"] = Route(rss([_item(1)]))
    _add(engine, server.url("/eco"), "economy")
    _add(engine, server.url("/sport"), "sports")
    _run(engine, settings.ingest)
    _run(engine, settings.ingest)
    with Session(engine) as session:
        eco, sport = _articles(session)
        tags = tags_of(session, [eco.id or 0, sport.id or 0])
        assert [(t["slug"], t["reason"]) for t in tags[eco.id or 0]] == [("economy", "feed")]
        assert [(t["slug"], t["reason"]) for t in tags[sport.id or 0]] == [("sports", "feed")]
        assert retag(session) == 0  # re-tagging keeps them


BAD = {
    "malformed": (
        Route(b"<rss version='2.0'><channel><item><title>a & b</title></item>"),
        "malformed XML",
    ),
    "html": (
        Route(
            b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>", content_type="text/html"
        ),
        "this is an HTML page, not a feed",
    ),
    "404": (Route(b"nope", status=404), "HTTP 404 Not Found"),
    "500": (Route(b"oops", status=500), "HTTP 500 Internal Server Error"),
    "timeout": (Route(rss([_item(9)]), delay=2.0), "timed out after 0.3 s"),
    "slow-drip": (Route(rss([_item(9)]), drip_seconds=3.0), "timed out after 0.3 s"),
    "50MB-announced": (Route(stream_bytes=50_000_000), "it announces 50000000 bytes"),
    "50MB-chunked": (
        Route(stream_bytes=50_000_000, announce_length=False),
        "the download was stopped there",
    ),
    "empty": (Route(b""), "the response is empty"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_feed_is_recorded_and_the_others_go_on(
    engine: Engine, settings: Settings, server: FeedServer, kind: str
) -> None:
    limits = settings.ingest.model_copy(update={"timeout": 0.3})
    server.routes["/bad"] = Route(rss([_item(1)]))
    server.routes["/good"] = Route(rss([_item(2)]))
    _add(engine, server.url("/bad"))
    _add(engine, server.url("/good"))
    _run(engine, limits)  # both fine: the bad feed has one stored article
    route, message = BAD[kind]
    server.routes["/bad"] = route
    server.routes["/good"] = Route(rss([_item(2), _item(3)]))

    report = _run(engine, limits, at=T0 + timedelta(hours=1))

    (failed,) = report.failed
    assert failed.url == server.url("/bad")
    assert message in (failed.error or "")
    assert report.feeds[1].new == 1  # the other feed went on
    with Session(engine) as session:
        bad = _feed(session, server.url("/bad"))
        assert message in (bad.last_error or "")
        assert bad.last_fetched_at == T0 + timedelta(hours=1)
        assert _feed(session, server.url("/good")).last_error is None
        first = session.exec(select(Article).where(Article.guid == "g-1")).one()
        assert (first.title, first.updated_at) == ("خبر رقم 1", None)  # untouched
        assert len(_articles(session)) == 3


def test_an_error_is_cleared_by_the_next_good_fetch(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/f"] = Route(b"down", status=503)
    _add(engine, server.url("/f"))
    assert _run(engine, settings.ingest).failed
    server.routes["/f"] = Route(rss([_item(1)]))
    assert not _run(engine, settings.ingest).failed
    with Session(engine) as session:
        assert _feed(session, server.url("/f")).last_error is None


def test_windows_1256_feed_over_http(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    body = rss([_item(1, title="الاقتصاد ينمو")], encoding="windows-1256", declare=False)
    server.routes["/legacy"] = Route(body, content_type="text/xml; charset=windows-1256")
    _add(engine, server.url("/legacy"))
    assert _run(engine, settings.ingest).new == 1
    with Session(engine) as session:
        assert _articles(session)[0].title == "الاقتصاد ينمو"


def test_items_without_link_title_or_date(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/f"] = Route(
        rss(
            [
                {"title": "بلا رابط", "guid": "not-a-url"},
                {"link": "https://news.example.org/no-title", "description": "نص الخبر بلا عنوان"},
                {"title": "بلا تاريخ", "link": "https://news.example.org/no-date"},
                {
                    "title": "تاريخ عبثي",
                    "link": "https://news.example.org/absurd",
                    "date": "Fri, 01 Jan 2100 00:00:00 GMT",
                },
            ]
        )
    )
    _add(engine, server.url("/f"))
    report = _run(engine, settings.ingest)
    assert report.new == 3 and not report.failed
    assert [(s.ref, s.reason) for s in report.feeds[0].skipped] == [
        ("not-a-url", "no link (and the guid is not a URL)")
    ]
    with Session(engine) as session:
        stored = _articles(session)
        assert [a.title for a in stored] == ["نص الخبر بلا عنوان", "بلا تاريخ", "تاريخ عبثي"]
        assert [a.published_at for a in stored] == [None, None, None]
        assert all(a.ingested_at == T0 for a in stored)


def test_only_one_feed(engine: Engine, settings: Settings, server: FeedServer) -> None:
    server.routes["/a"] = Route(rss([_item(1)]))
    server.routes["/b"] = Route(rss([_item(2)]))
    _add(engine, server.url("/a"))
    _add(engine, server.url("/b"))
    report = _run(engine, settings.ingest, only=server.url("/b"))
    assert [f.url for f in report.feeds] == [server.url("/b")]
    assert server.requests_to("/a") == []


def test_retag_after_keywords_change(
    engine: Engine, settings: Settings, server: FeedServer, make_topics: dict[str, int]
) -> None:
    server.routes["/f"] = Route(rss([_item(1, title="أوبك تخفض الإنتاج"), _item(2)]))
    _add(engine, server.url("/f"))
    _run(engine, settings.ingest)
    with session_scope(engine) as session:
        economy = session.get(Topic, make_topics["economy"])
        assert economy is not None
        economy.keywords = ["أوبك"]
    with session_scope(engine) as session:
        assert retag(session) == 1
        assert retag(session) == 0  # idempotent
    with Session(engine) as session:
        first = session.exec(select(Article).where(Article.guid == "g-1")).one()
        assert tags_of(session, [first.id or 0])[first.id or 0] == [
            {"slug": "economy", "reason": "keyword", "detail": "أوبك"}
        ]
    with session_scope(engine) as session:
        economy = session.get(Topic, make_topics["economy"])
        assert economy is not None
        economy.keywords = []
    with session_scope(engine) as session:
        assert retag(session) == 1
        assert tags_of(session, [first.id or 0]) == {}


def test_sample_feed_is_tagged_as_documented(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        for topic in samples.sample_topics():
            topics.add_topic(
                session,
                slug=topic.slug,
                name=topic.name,
                name_en=topic.name_en,
                keywords=topic.keywords,
                aliases=topic.aliases,
            )
    _add(engine, str(samples.feed_path()))
    report = _run(engine, settings.ingest)
    assert (report.new, report.feeds[0].skipped, report.failed) == (14, [], [])
    with Session(engine) as session:
        stored = _articles(session)
        tags = tags_of(session, [a.id for a in stored if a.id])
        got = {a.guid: frozenset(t["slug"] for t in tags.get(a.id or 0, [])) for a in stored}
        assert got == samples.EXPECTED_TOPICS
        assert all(a.url.startswith("https://news.example.org/") for a in stored)
        assert sum(1 for a in stored if a.image_url) == 13
        assert {t["reason"] for ts in tags.values() for t in ts} == {"category", "keyword"}


def test_clock_is_ours_not_the_feeds(
    engine: Engine, settings: Settings, server: FeedServer
) -> None:
    server.routes["/f"] = Route(rss([_item(1, date="Mon, 01 Jan 2024 00:00:00 GMT")]))
    _add(engine, server.url("/f"))
    when: Callable[[], datetime] = lambda: T0  # noqa: E731
    ingest(engine, settings.ingest, clock=when)
    with Session(engine) as session:
        (article,) = _articles(session)
        assert article.published_at == datetime(2024, 1, 1, tzinfo=UTC)
        assert article.ingested_at == T0


def test_new_articles_without_guid_get_their_own_tags(
    engine: Engine, settings: Settings, server: FeedServer, make_topics: dict[str, int]
) -> None:
    server.routes["/f"] = Route(
        rss(
            [
                {"title": "المنتخب يتأهل", "link": "https://news.example.org/s"},
                _item(1, title="النفط يرتفع"),
                {"title": "موعد الانتخابات", "link": "https://news.example.org/p"},
                {"title": "تكرار بلا معرف", "link": "https://news.example.org/a/1"},
            ]
        )
    )
    _add(engine, server.url("/f"))
    report = _run(engine, settings.ingest)
    assert [s.reason for s in report.feeds[0].skipped] == ["repeated in the same feed"]
    with Session(engine) as session:
        stored = _articles(session)
        tags = tags_of(session, [a.id for a in stored if a.id])
        assert [(a.title, [t["slug"] for t in tags[a.id or 0]]) for a in stored] == [
            ("المنتخب يتأهل", ["sports"]),
            ("النفط يرتفع", ["economy"]),
            ("موعد الانتخابات", ["politics"]),
        ]


def test_a_database_error_fails_only_that_feed(
    engine: Engine, settings: Settings, server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. another `digest ingest` stored the same item first: rolled back, retried next run.
    server.routes["/a"] = Route(rss([_item(1)]), etag='"a"')
    server.routes["/b"] = Route(rss([_item(2)]))
    _add(engine, server.url("/a"))
    _add(engine, server.url("/b"))
    real = ingest_module.store_items

    def flaky(session: Session, feed: Feed, *args: Any) -> tuple[int, int, int]:
        if feed.url.endswith("/a"):
            raise IntegrityError("INSERT INTO article", {}, Exception("UNIQUE constraint failed"))
        return real(session, feed, *args)

    monkeypatch.setattr(ingest_module, "store_items", flaky)
    report = _run(engine, settings.ingest)
    assert [f.status for f in report.feeds] == [FeedStatus.FAILED, FeedStatus.FETCHED]
    assert report.feeds[0].error == "database error, nothing stored: UNIQUE constraint failed"
    with Session(engine) as session:
        assert [a.guid for a in _articles(session)] == ["g-2"]
        assert _feed(session, server.url("/a")).etag is None  # so the next run fetches again
    monkeypatch.undo()
    assert _run(engine, settings.ingest).new == 1


# --- Big documents parsed by worker processes (digest.ingest.parallel) ---------------------------


def _big_items(count: int, edit: bool = False) -> list[dict[str, object]]:
    made = []
    for n in range(count):
        words = ("النفط", "المنتخب", "الانتخابات", "الطقس")[n % 4]
        item = _item(n, description=f"<p>ملخص {n} عن {words}</p>", categories=["Business"])
        if n % 17 == 0:
            item.pop("guid")  # identified by URL
        if n % 23 == 0:
            item.pop("link")
            item["guid"] = f"https://news.example.org/guid/{n}"  # a guid that is a URL
        if edit and n % 5 == 0:
            item["title"] = f"خبر رقم {n} (محدث)"
            item["categories"] = []
        made.append(item)
    made.append(_item(3, title="مكرر"))  # repeats a guid: skipped
    return made


def _snapshot(engine: Engine) -> list[tuple[object, ...]]:
    with Session(engine) as session:
        stored = _articles(session)
        tags = tags_of(session, [a.id for a in stored if a.id])
        return [
            (
                a.guid,
                a.url,
                a.title,
                a.summary,
                a.body_html,
                a.published_at,
                a.categories,
                a.ingested_at,
                a.updated_at,
                [(t["slug"], t["reason"], t["detail"]) for t in tags.get(a.id or 0, [])],
            )
            for a in stored
        ]


def _summary(report: IngestReport) -> list[tuple[object, ...]]:
    return [(f.status, f.new, f.updated, f.unchanged, f.skipped, f.error) for f in report.feeds]


def test_a_big_feed_parsed_by_workers_stores_what_one_process_stores(
    engine: Engine,
    settings: Settings,
    make_topics: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parsing, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parsing, "CHUNK_BYTES", 4_000)
    split = 0
    real_collect = parsing._collect

    def counting(*args: Any) -> Any:
        nonlocal split
        split += 1
        return real_collect(*args)

    monkeypatch.setattr(parsing, "_collect", counting)
    path = tmp_path / "big.xml"
    path.write_bytes(b"")
    _add(engine, str(path), "sports")
    outcomes = []
    for workers in (2, 0):
        with session_scope(engine) as session:
            session.execute(delete(Article))  # and their tags
        path.write_bytes(rss(_big_items(300)))
        first = _run(engine, settings.ingest, workers=workers)
        path.write_bytes(rss(_big_items(300, edit=True)))
        second = _run(engine, settings.ingest, T0 + timedelta(hours=1), workers=workers)
        outcomes.append((_summary(first), _summary(second), _snapshot(engine)))
    assert split == 2  # both runs with workers were split
    assert outcomes[0] == outcomes[1]
    (first_report,), (second_report,), stored = outcomes[0]
    assert first_report[:4] == (FeedStatus.FETCHED, 300, 0, 0)
    assert [s.reason for s in first_report[4]] == ["repeated in the same feed"]
    assert second_report[:4] == (FeedStatus.FETCHED, 0, 60, 240)
    assert len(stored) == 300 and {slug for row in stored for slug, *_ in row[-1]} == {
        "economy",
        "politics",
        "sports",
    }


def test_a_split_that_fails_midway_is_rolled_back_and_the_document_read_whole(
    engine: Engine,
    settings: Settings,
    make_topics: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(rss([_item(n) for n in range(30)]))
    _add(engine, str(path))
    attempts = 0

    def failing_split(content: bytes, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        whole = parse_document(
            content, content_type=kwargs["content_type"], location=kwargs["location"], now=T0
        )

        def parts() -> Iterator[ParsedFeed]:
            yield ParsedFeed(whole.title, whole.items[:10], [])  # stored, then rolled back
            raise SplitFailed("items 11-20: read as windows-1252")

        return parts()

    monkeypatch.setattr(ingest_module, "parse_parts", failing_split)
    report = _run(engine, settings.ingest)
    assert attempts == 1
    assert _summary(report) == [(FeedStatus.FETCHED, 30, 0, 0, [], None)]
    with Session(engine) as session:
        assert sorted(a.guid or "" for a in _articles(session)) == sorted(
            f"g-{n}" for n in range(30)
        )


def test_a_big_malformed_feed_fails_as_it_does_in_one_process(
    engine: Engine,
    settings: Settings,
    make_topics: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parsing, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parsing, "CHUNK_BYTES", 4_000)
    path = tmp_path / "big.xml"
    path.write_bytes(rss(_big_items(100)))
    _add(engine, str(path))
    assert _run(engine, settings.ingest, workers=2).new == 100
    path.write_bytes(rss(_big_items(100, edit=True)).replace(b"</channel>", b"</chanel>"))
    errors = []
    for workers in (2, 0):
        report = _run(engine, settings.ingest, workers=workers)
        assert report.feeds[0].status is FeedStatus.FAILED
        errors.append(report.feeds[0].error)
    assert errors[0] == errors[1] and (errors[0] or "").startswith("malformed XML")
    with Session(engine) as session:
        assert not any("محدث" in a.title for a in _articles(session))  # untouched


@pytest.mark.parametrize("error", [RecursionError("deep"), KeyError("x"), AssertionError()])
def test_an_unexpected_error_of_any_kind_fails_that_feed_only(
    engine: Engine,
    settings: Settings,
    server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    server.routes["/a"] = Route(rss([_item(1)]))
    server.routes["/b"] = Route(rss([_item(2)]))
    _add(engine, server.url("/a"))
    _add(engine, server.url("/b"))
    real = ingest_module.parse_parts

    def buggy(content: bytes, **kwargs: Any) -> Any:
        if kwargs["location"].endswith("/a"):
            raise error  # e.g. a parser bug on a hostile document
        return real(content, **kwargs)

    monkeypatch.setattr(ingest_module, "parse_parts", buggy)
    report = _run(engine, settings.ingest)  # stopped the whole run before
    assert [f.status for f in report.feeds] == [FeedStatus.FAILED, FeedStatus.FETCHED]
    assert (report.feeds[0].error or "").startswith(
        f"unexpected error, nothing stored: {type(error).__name__}"
    )
    with Session(engine) as session:
        assert (_feed(session, server.url("/a")).last_error or "").startswith("unexpected error")
        assert [a.guid for a in _articles(session)] == ["g-2"]
