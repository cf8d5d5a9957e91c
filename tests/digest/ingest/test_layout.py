"""Where the items of a feed document are: spans found by one expat pass, cut into chunks."""

from __future__ import annotations

import itertools

from digest.ingest.layout import find_items, plan_chunks
from tests.helpers.feed_docs import Item, atom, rss


def _items(count: int) -> list[Item]:
    return [
        {"title": f"خبر {n}", "link": f"https://news.example.org/{n}", "guid": f"g-{n}"}
        for n in range(count)
    ]


def test_items_of_rss_and_atom_are_found_with_what_surrounds_them() -> None:
    document = rss(_items(12))
    layout = find_items(document)
    assert layout is not None and len(layout.spans) == 12
    first, last = layout.spans[0], layout.spans[-1]
    assert document[first[0] : first[1]].startswith(b"<item>")
    assert document[last[0] : last[1]].endswith(b"</item>")
    assert layout.header == document[: first[0]] and layout.footer == document[last[1] :]
    entries = [
        {"title": "t", "link": f"https://news.example.org/{n}", "id": str(n)} for n in range(5)
    ]
    atom_layout = find_items(atom(entries))
    assert atom_layout is not None and len(atom_layout.spans) == 5


def test_documents_that_cannot_be_split_safely_give_none() -> None:
    assert find_items(rss(_items(5)).replace(b"</channel>", b"</chanel>")) is None
    utf16 = rss(_items(5)).decode("utf-8").replace("utf-8", "utf-16").encode("utf-16")
    assert find_items(utf16) is None
    doctype = rss(_items(5)).replace(b"?><rss", b'?><!DOCTYPE rss [<!ENTITY e "x">]><rss')
    assert find_items(doctype) is None
    assert find_items(b"<html><item>x</item></html>") is None


def test_plan_chunks_covers_every_item_once() -> None:
    layout = find_items(rss(_items(97)))
    assert layout is not None
    for chunk_bytes, count in ((1, 2), (500, 2), (10**9, 2), (3_000, 8)):
        ranges = plan_chunks(layout, chunk_bytes, count)
        assert ranges[0][0] == 0 and ranges[-1][1] == 97
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert all(start < stop for start, stop in ranges)
        assert len(ranges) >= min(2 * count, 97)
