"""Feed documents to clean items: RSS, Atom, JSON Feed, and every kind of bad input."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.ingest.documents import FeedError, ParsedFeed, canonical_url, parse_document
from digest.ingest.parallel import ParseWorkers, SplitFailed, find_items, parse_parts, plan_chunks
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


# --- Big documents split into chunks of whole items, parsed by worker processes -----------
# Chunks are made tiny here (a few items each) so that small documents split into many.


@pytest.fixture(scope="module")
def workers() -> Iterator[ParseWorkers]:
    with ParseWorkers(2) as pool:
        yield pool


def _many(count: int) -> list[dict[str, Any]]:
    """Items with every field the cleaner reads, some repeated, some skipped."""
    made: list[dict[str, Any]] = []
    for n in range(count):
        item: dict[str, Any] = {
            "title": f"خبر رقم {n} عن <b>النفط</b>" if n % 9 else "",
            "link": f"/news/{n}?utm_source=rss" if n % 11 else "",
            "guid": f"g-{n % (count - 5)}",  # the last five repeat earlier guids
            "date": f"Sat, 28 Nov 2026 0{n % 9}:00:00 +0300",
            "description": f"<p>ملخص الخبر {n}</p><script>alert(1)</script>",
            "categories": ["اقتصاد", f"أخبار > قسم {n % 4}"],
        }
        if n % 3 == 0:
            item["content"] = f"<div><p>نص الخبر {n}</p><img src='/img/{n}.jpg'></div>"
        if n % 5 == 0:
            item["image"] = f"https://news.example.org/media/{n}.png"
        if n % 7 == 0:
            item["author"] = f"كاتب {n % 3}"
        if n % 11 == 0:
            del item["link"]  # no link: skipped unless the guid is a URL
            if n % 2:  # nothing to name it by: "item #N"
                del item["title"], item["description"], item["guid"]
        made.append({k: v for k, v in item.items() if v != ""})
    return made


def _split(
    content: bytes, workers: ParseWorkers, content_type: str | None = None
) -> list[ParsedFeed]:
    return list(
        parse_parts(
            content,
            content_type=content_type,
            location=LOCATION,
            now=NOW,
            workers=workers,
            min_bytes=0,
            chunk_bytes=2_000,
        )
    )


def _assert_same_as_whole(
    content: bytes, workers: ParseWorkers, content_type: str | None = None
) -> list[ParsedFeed]:
    whole = _parse(content, content_type)
    parts = _split(content, workers, content_type)
    assert len(parts) > 3  # it was split
    assert [i for p in parts for i in p.items] == whole.items
    assert [s for p in parts for s in p.skipped] == whole.skipped
    assert {p.title for p in parts} == {whole.title}
    return parts


def test_a_big_rss_feed_parsed_in_parallel_reads_as_parsed_whole(workers: ParseWorkers) -> None:
    document = rss(_many(300))
    layout = find_items(document)
    assert layout is not None and len(layout.spans) == 300
    parts = _assert_same_as_whole(document, workers)
    whole = _parse(document)
    assert len(whole.items) > 250 and len(whole.skipped) > 10  # all kinds were there
    assert any(s.ref.startswith("item #") for p in parts[1:] for s in p.skipped)  # numbering


def test_a_big_atom_feed_parsed_in_parallel_reads_as_parsed_whole(workers: ParseWorkers) -> None:
    entries = [
        {
            "title": f"عنوان {n}",
            "link": f"https://news.example.org/atom/{n}",
            "id": f"urn:atom:{n % 290}",
            "updated": f"2026-11-2{n % 8}T05:00:00Z",
            "summary": f"ملخص <i>{n}</i>",
            "content": f"<p>المحتوى {n}</p>" if n % 2 else "",
            "categories": [f"قسم {n % 5}"],
        }
        for n in range(300)
    ]
    document = atom(entries)
    assert len(_parse(document).items) == 300
    _assert_same_as_whole(document, workers)
    spaced = document.replace(b"<entry>", b"\n  <entry>").replace(b"</feed>", b"\n</feed>\n")
    _assert_same_as_whole(spaced, workers)


def test_rss_1_and_a_legacy_encoding_split_too(workers: ParseWorkers) -> None:
    items = "".join(
        f'<item rdf:about="https://news.example.org/{n}"><title>خبر {n}</title>'
        f"<link>https://news.example.org/{n}</link><description>نص {n}</description></item>"
        for n in range(120)
    )
    rdf = (
        '<?xml version="1.0" encoding="utf-8"?><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://news.example.org/">'
        f"<title>RDF</title><link>https://news.example.org/</link></channel>{items}</rdf:RDF>"
    )
    _assert_same_as_whole(rdf.encode(), workers)
    legacy = rss(_many(120), encoding="windows-1256")
    _assert_same_as_whole(legacy, workers)


def test_cdata_with_item_markup_inside_is_text_not_an_item(workers: ParseWorkers) -> None:
    items = _many(100)
    document = rss(items)
    fake = b"<![CDATA[<p>x</p><item><title>fake</title></item></channel></rss>]]>"
    document = document.replace(b"<description>", b"<description>" + fake, 40)
    layout = find_items(document)
    assert layout is not None and len(layout.spans) == 100
    parts = _assert_same_as_whole(document, workers)
    assert not any("fake" in i.title for p in parts for i in p.items)
    # The CDATA is the start of the description (its tags cleaned away, its text kept).
    assert sum("<p>x</p>" in i.body_html for p in parts for i in p.items) >= 20


def test_malformed_xml_is_reported_as_when_parsed_whole(workers: ParseWorkers) -> None:
    document = rss(_many(100)).replace(b"</channel>", b"</chanel>")
    assert find_items(document) is None
    with pytest.raises(FeedError, match="malformed XML") as whole:
        _parse(document)
    with pytest.raises(FeedError) as split:
        _split(document, workers)
    assert str(split.value) == str(whole.value)
    truncated = rss(_many(100))[:-3000]
    with pytest.raises(FeedError, match="malformed XML"):
        _split(truncated, workers)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"</item><item>", b"</item><!-- a comment --><item>"),  # not only whitespace between
        (b"</item><item>", b"</item><image><url>x</url></image><item>"),
        (b"<channel>", b"<channel><item/>"),  # an empty-element item
        (b"<?xml", b'<!DOCTYPE rss [<!ENTITY e "x">]><?xml'),
        (b"<rss ", b"<?xml-stylesheet href='a.xsl'?><rss "),  # fine: splits
        (b"<rss ", b"<rss xmlns:x='urn:x' "),  # fine: splits
        (b"</item><item>", b"</item><x:item xmlns:x='urn:x'/><item>"),
        (b"<title>", b"<item><title>first</title></item><title>"),  # channel title among items
        (b"<item><title>", b"<item><item><link>https://x.example/</link></item><title>"),  # nested
    ],
)
def test_documents_that_are_not_split_are_read_whole(
    workers: ParseWorkers, old: bytes, new: bytes
) -> None:
    document = rss(_many(60)).replace(old, new, 1)
    if old == b"<?xml":  # a DOCTYPE goes after the XML declaration
        document = rss(_many(60)).replace(b"?><rss", b'?><!DOCTYPE rss [<!ENTITY e "x">]><rss')
    splits = b"xml-stylesheet" in new or b"urn:x' " in new
    assert (find_items(document) is not None) == splits
    try:
        whole: ParsedFeed | str = _parse(document)
    except FeedError as exc:
        whole = str(exc)
    try:
        parts = _split(document, workers)
    except FeedError as exc:
        assert str(exc) == whole
        return
    assert (len(parts) > 1) == splits
    assert not isinstance(whole, str)
    assert [i for p in parts for i in p.items] == whole.items


def test_a_chunk_read_otherwise_than_the_whole_document_is_refused(
    workers: ParseWorkers,
) -> None:
    # Served as ASCII but UTF-8 Arabic: feedparser reads the whole document in another
    # encoding than declared, and an all-ASCII chunk would be read as declared.
    items = [{"title": f"News {n}", "link": f"https://news.example.org/{n}"} for n in range(60)]
    items[45]["title"] = "خبر"
    document = rss(items, title="Feed")
    with pytest.raises(SplitFailed):
        _split(document, workers, "application/rss+xml; charset=us-ascii")
    # text/* without charset means ASCII: known to fail, not even split.
    parts = _split(document, workers, "text/xml")
    assert len(parts) == 1 and parts[0].items == _parse(document, "text/xml").items


def test_small_or_json_documents_and_no_workers_are_parsed_at_once(
    workers: ParseWorkers,
) -> None:
    document = rss(_many(60))
    default = parse_parts(document, content_type=None, location=LOCATION, now=NOW, workers=workers)
    assert len(list(default)) == 1  # under PARALLEL_MIN_BYTES
    alone = parse_parts(
        document, content_type=None, location=LOCATION, now=NOW, workers=None, min_bytes=0
    )
    assert len(list(alone)) == 1
    assert ParseWorkers(1).executor() is None
    items = [
        {"id": str(n), "url": f"https://news.example.org/{n}", "title": "t"} for n in range(50)
    ]
    assert len(_split(json_feed(items), workers)) == 1
    with pytest.raises(FeedError, match="empty"):
        _split(b"  ", workers)


def test_plan_chunks_covers_every_item_once() -> None:
    layout = find_items(rss(_many(97)))
    assert layout is not None
    for chunk_bytes, count in ((1, 2), (500, 2), (10**9, 2), (3_000, 8)):
        ranges = plan_chunks(layout, chunk_bytes, count)
        assert ranges[0][0] == 0 and ranges[-1][1] == 97
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert all(start < stop for start, stop in ranges)
        assert len(ranges) >= min(2 * count, 97)


def test_channel_elements_after_the_items_are_in_every_chunk(workers: ParseWorkers) -> None:
    # The feed's link (the base of relative item links) and language come after the items.
    document = rss(_many(120), language=None).replace(
        b"<link>https://news.example.org/</link>", b""
    )
    document = document.replace(
        b"</channel>", b"<link>https://other.example.org/x/</link><language>en</language></channel>"
    )
    parts = _assert_same_as_whole(document, workers)
    assert {i.language for p in parts for i in p.items} == {"en"}
    assert any(i.url.startswith("https://other.example.org/news/") for p in parts for i in p.items)


def test_a_process_with_other_threads_parses_in_one_process() -> None:
    # fork() is not safe then, and the other start methods cost more than they save.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with ParseWorkers(2) as fresh:
            assert fresh.executor() is None
            assert len(_split(rss(_many(60)), fresh)) == 1
    finally:
        stop.set()
        other.join()
