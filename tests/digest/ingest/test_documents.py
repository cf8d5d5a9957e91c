"""Feed documents to clean items: RSS, Atom, JSON Feed, and every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from digest.ingest.documents import FeedError, canonical_url, parse_document
from tests.helpers.feed_docs import atom, json_feed, rss

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LOCATION = "https://news.example.org/rss.xml"


def _parse(content: bytes, content_type: str | None = None):  # type: ignore[no-untyped-def]
    return parse_document(content, content_type=content_type, location=LOCATION, now=NOW)


def test_rss_item_with_everything() -> None:
    parsed = _parse(
        rss(
            [
                {
                    "title": "ارتفاع <b>النفط</b>",
                    "link": "/economy/oil?utm_source=rss&id=7#top",
                    "guid": "g-1",
                    "date": "Sat, 28 Nov 2026 09:00:00 +0300",
                    "categories": ["اقتصاد", "طاقة"],
                    "description": "<p>ملخص <b>قصير</b></p>",
                    "content": "<p>النص <a href='/more'>الكامل</a></p>",
                    "image": "https://news.example.org/i.jpg",
                    "author": "سلمى",
                }
            ]
        )
    )
    assert parsed.title == "أخبار الاختبار"
    (item,) = parsed.items
    assert item.guid == "g-1"
    assert item.url == "https://news.example.org/economy/oil?id=7"  # absolute, no tracking
    assert item.title == "ارتفاع النفط"  # markup stripped from text fields
    assert item.summary == "ملخص قصير"
    assert item.body_html == (
        '<p>النص <a href="https://news.example.org/more" rel="noopener noreferrer">الكامل</a></p>'
    )
    assert item.image_url == "https://news.example.org/i.jpg"
    assert item.author == "سلمى"
    assert item.published_at == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    assert item.categories == ("اقتصاد", "طاقة")
    assert item.language == "ar"


def test_atom_entry() -> None:
    parsed = _parse(
        atom(
            [
                {
                    "title": "هدف في الدقيقة 90",
                    "link": "https://news.example.org/sports/goal",
                    "id": "tag:news.example.org,2026:goal",
                    "updated": "2026-11-28T08:00:00+03:00",
                    "summary": "ملخص المباراة",
                    "content": "<p>تفاصيل <img src='/g.jpg'></p>",
                    "categories": ["رياضة"],
                }
            ]
        ),
        "application/atom+xml",
    )
    (item,) = parsed.items
    assert item.guid == "tag:news.example.org,2026:goal"
    assert item.summary == "ملخص المباراة"
    assert item.image_url == "https://news.example.org/g.jpg"  # first <img> of the body
    assert item.published_at == datetime(2026, 11, 28, 5, 0, tzinfo=UTC)
    assert item.categories == ("رياضة",)
    assert item.language == "ar"


def test_json_feed_item() -> None:
    parsed = _parse(
        json_feed(
            [
                {
                    "id": 42,
                    "url": "https://news.example.org/tech/chip",
                    "title": "شريحة جديدة",
                    "content_html": "<p>نص <script>x()</script>الخبر</p>",
                    "image": "/img/chip.jpg",
                    "date_published": "2026-11-28T07:30:00+03:00",
                    "tags": ["تقنية"],
                    "authors": [{"name": "ريم"}],
                }
            ]
        ),
        "application/feed+json",
    )
    (item,) = parsed.items
    assert item.guid == "42"
    assert item.body_html == "<p>نص الخبر</p>"
    assert item.summary == "نص الخبر"  # no summary given: taken from the body
    assert item.image_url == "https://news.example.org/img/chip.jpg"
    assert item.published_at == datetime(2026, 11, 28, 4, 30, tzinfo=UTC)
    assert item.author == "ريم"
    assert item.categories == ("تقنية",)


def test_json_feed_text_content_becomes_paragraphs() -> None:
    parsed = _parse(
        json_feed(
            [
                {
                    "id": "1",
                    "url": "https://news.example.org/a",
                    "title": "t",
                    "content_text": "فقرة <أولى>\n\nفقرة ثانية",
                }
            ]
        )
    )
    assert parsed.items[0].body_html == "<p>فقرة &lt;أولى&gt;</p><p>فقرة ثانية</p>"


def test_summary_from_body_is_cut_at_a_word_with_an_ellipsis() -> None:
    body = "<p>" + " ".join(["الاقتصاد", "العالمي", "يتباطأ"] * 40) + "</p>"
    (item,) = _parse(
        rss([{"title": "t", "link": "https://news.example.org/a", "content": body}])
    ).items
    assert item.summary.endswith("…")
    assert len(item.summary) <= 281
    assert set(item.summary[:-1].split()) <= {"الاقتصاد", "العالمي", "يتباطأ"}


def test_rss_description_alone_is_the_body_and_the_summary() -> None:
    (item,) = _parse(
        rss(
            [
                {
                    "title": "t",
                    "link": "https://news.example.org/a",
                    "description": "<p>خبر قصير <em>مهم</em></p>",
                }
            ]
        )
    ).items
    assert item.body_html == "<p>خبر قصير <em>مهم</em></p>"
    assert item.summary == "خبر قصير مهم"


def test_image_from_enclosure_or_body() -> None:
    items = _parse(
        rss(
            [
                {"title": "a", "link": "https://news.example.org/a", "enclosure": "/e.jpg"},
                {
                    "title": "b",
                    "link": "https://news.example.org/b",
                    "description": "<img src='/b.png'>",
                },
                {"title": "c", "link": "https://news.example.org/c", "description": "بلا صورة"},
            ]
        )
    ).items
    assert [i.image_url for i in items] == [
        "https://news.example.org/e.jpg",
        "https://news.example.org/b.png",
        None,
    ]


def test_items_without_link_are_skipped_with_a_reason() -> None:
    parsed = _parse(
        rss(
            [
                {"title": "بلا رابط ولا معرف"},
                {"title": "معرف ليس رابطًا", "guid": "abc-123"},
                {"title": "معرف رابط", "guid": "https://news.example.org/g"},
                {"title": "رابط جافاسكربت", "link": "javascript:alert(1)"},
            ]
        )
    )
    assert [i.url for i in parsed.items] == ["https://news.example.org/g"]
    assert [s.reason for s in parsed.skipped] == ["no link (and the guid is not a URL)"] * 3
    assert [s.ref for s in parsed.skipped] == ["بلا رابط ولا معرف", "abc-123", "رابط جافاسكربت"]


def test_item_without_title_takes_its_first_words() -> None:
    parsed = _parse(
        rss(
            [
                {
                    "link": "https://news.example.org/a",
                    "description": "أعلنت الوزارة اليوم خطة جديدة",
                },
                {"link": "https://news.example.org/b"},
            ]
        )
    )
    assert [i.title for i in parsed.items] == ["أعلنت الوزارة اليوم خطة جديدة"]
    assert parsed.skipped[0].reason == "no title and no text"


@pytest.mark.parametrize(
    "date",
    [
        "",
        "not a date",
        "Mon, 32 Foo 2026 99:99:99 +0000",
        "Sat, 01 Jan 1972 00:00:00 GMT",
        "Fri, 01 Jan 2100 00:00:00 GMT",
        "Thu, 01 Jan 0001 00:00:00 GMT",
    ],
)
def test_missing_or_absurd_dates_become_none(date: str) -> None:
    item = {"title": "t", "link": "https://news.example.org/a"}
    if date:
        item["date"] = date
    (parsed,) = _parse(rss([item])).items
    assert parsed.published_at is None


def test_a_date_within_a_day_ahead_is_kept() -> None:
    (item,) = _parse(
        rss(
            [
                {
                    "title": "t",
                    "link": "https://news.example.org/a",
                    "date": "Sat, 28 Nov 2026 20:00:00 GMT",
                }
            ]
        )
    ).items
    assert item.published_at == datetime(2026, 11, 28, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("declare", "content_type"),
    [
        (True, None),
        (False, "text/xml; charset=windows-1256"),
        (False, "application/rss+xml"),
        (False, "text/xml; charset=UTF-8"),
    ],
    ids=["xml-prolog", "http-charset", "undeclared", "wrongly-declared-utf8"],
)
def test_windows_1256_feed(declare: bool, content_type: str | None) -> None:
    document = rss(
        [
            {
                "title": "الاقتصاد ينمو",
                "link": "https://news.example.org/a",
                "categories": ["اقتصاد"],
            }
        ],
        encoding="windows-1256",
        declare=declare,
    )
    (item,) = _parse(document, content_type).items
    assert item.title == "الاقتصاد ينمو"
    assert item.categories == ("اقتصاد",)


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"", None, "the response is empty"),
        (
            b"<rss version='2.0'><channel><title>x</title><item><title>a & b</title>"
            b"<link>https://news.example.org/a</link></item>",
            None,
            "malformed XML",
        ),
        (
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>hi</body></html>",
            "text/html; charset=utf-8",
            "this is an HTML page, not a feed",
        ),
        (b"<html><body><p>Welcome</p></body></html>", None, "this is an HTML page, not a feed"),
        (b"<note><to>x</to></note>", None, "not a feed"),
        (b'{"items": [', "application/json", "malformed JSON"),
        (b'{"hello": "world"}', "application/json", "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": 3}', None, "not a list"),
    ],
    ids=[
        "empty",
        "malformed-xml",
        "html-page",
        "html-no-type",
        "other-xml",
        "broken-json",
        "other-json",
        "json-items",
    ],
)
def test_bad_documents_raise_feed_error(
    content: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(FeedError, match=message):
        _parse(content, content_type)


def test_json_feed_with_odd_types_does_not_crash() -> None:
    document = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "items": [
                "not an item",
                {"id": None, "url": 5, "title": ["x"]},
                {
                    "id": "ok",
                    "url": "https://news.example.org/ok",
                    "title": "سليم",
                    "tags": "x",
                    "authors": "nobody",
                    "date_published": 12,
                },
            ],
        }
    ).encode()
    parsed = _parse(document)
    assert [i.title for i in parsed.items] == ["سليم"]
    assert parsed.items[0].published_at is None


def test_canonical_url() -> None:
    assert canonical_url("HTTPS://News.Example.org/a?utm_source=x&b=2&fbclid=1#frag") == (
        "https://news.example.org/a?b=2"
    )
    assert canonical_url("https://news.example.org") == "https://news.example.org/"
    assert canonical_url("https://news.example.org/ar/%D8%A7?q=%D8%A7") == (
        "https://news.example.org/ar/%D8%A7?q=%D8%A7"
    )


def test_windows_1256_bytes_in_a_feed_that_claims_utf8() -> None:
    document = rss([{"title": "خبر عاجل", "link": "https://news.example.org/a"}])
    legacy = document.decode("utf-8").encode("windows-1256")  # prolog still says utf-8
    assert legacy.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert _parse(legacy).items[0].title == "خبر عاجل"
    utf16 = document.decode("utf-8").replace("utf-8", "utf-16").encode("utf-16")
    assert _parse(utf16).items[0].title == "خبر عاجل"
