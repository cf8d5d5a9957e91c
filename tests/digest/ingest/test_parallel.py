"""Big documents split into chunks of whole items, parsed by worker processes: what they
read is what the whole document reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.ingest.documents import FeedError, ParsedFeed, parse_document
from digest.ingest.layout import find_items
from digest.ingest.parallel import Chunking, ParseWorkers, SplitFailed, parse_parts
from tests.helpers.feed_docs import atom, json_feed, rss

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LOCATION = "https://news.example.org/rss.xml"
# Chunks are made tiny here (a few items each) so that small documents split into many.
TINY = Chunking(min_bytes=0, chunk_bytes=2_000)


def _parse(content: bytes, content_type: str | None = None) -> ParsedFeed:
    return parse_document(content, content_type=content_type, location=LOCATION, now=NOW)


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
            chunking=TINY,
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
        document, content_type=None, location=LOCATION, now=NOW, workers=None, chunking=TINY
    )
    assert len(list(alone)) == 1
    assert ParseWorkers(1).executor() is None
    items = [
        {"id": str(n), "url": f"https://news.example.org/{n}", "title": "t"} for n in range(50)
    ]
    assert len(_split(json_feed(items), workers)) == 1
    with pytest.raises(FeedError, match="empty"):
        _split(b"  ", workers)


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
