"""Feeds: registering them, and fetching with a size cap, a deadline and redirects."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from digest.config import IngestSettings
from digest.errors import AlreadyExists, InvalidInput, NotFound
from digest.ingest import feeds
from digest.ingest.documents import FeedError
from tests.helpers.feed_server import Route, serving


def test_normalize_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        feeds.normalize_location(" https://news.example.org/rss ") == "https://news.example.org/rss"
    )
    assert feeds.normalize_location("feed.xml") == str(tmp_path / "feed.xml")
    assert feeds.normalize_location(f"file://{tmp_path}/a%20b.xml") == str(tmp_path / "a b.xml")
    for bad in ("", "https://", "ftp://x.org/rss", "gopher://x"):
        with pytest.raises(InvalidInput):
            feeds.normalize_location(bad)


def test_add_get_remove(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    path.write_text("<rss/>")
    feed = feeds.add_feed(session, url=str(path))
    with pytest.raises(AlreadyExists):
        feeds.add_feed(session, url=f"file://{path}")
    assert feeds.get_feed(session, f"file://{path}").id == feed.id
    feeds.remove_feed(session, str(path))
    with pytest.raises(NotFound):
        feeds.get_feed(session, str(path))


def test_local_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 5000)
    with httpx.Client() as client:
        with pytest.raises(FeedError, match=r"larger than 1000 bytes \(the file has 5000 bytes"):
            feeds.fetch(str(path), settings=IngestSettings(max_bytes=1000), client=client)
        fetched = feeds.fetch(str(path), settings=IngestSettings(), client=client)
    assert fetched.content == b"x" * 5000
    assert fetched.location == path.as_uri()


def test_unreadable_local_file(tmp_path: Path) -> None:
    with httpx.Client() as client, pytest.raises(FeedError, match="cannot read"):
        feeds.fetch(str(tmp_path / "gone.xml"), settings=IngestSettings(), client=client)


def test_redirects_are_followed_and_the_final_url_is_the_base() -> None:
    with serving() as server, httpx.Client() as client:
        server.routes["/old"] = Route(b"", status=301, headers={"Location": "/new"})
        server.routes["/new"] = Route(b"<rss/>", etag='"e"')
        fetched = feeds.fetch(server.url("/old"), settings=IngestSettings(), client=client)
    assert (fetched.content, fetched.etag) == (b"<rss/>", '"e"')
    assert fetched.location == server.url("/new")


def test_connection_refused_is_a_feed_error() -> None:
    with httpx.Client() as client, pytest.raises(FeedError, match="cannot fetch"):
        feeds.fetch("http://127.0.0.1:9/rss", settings=IngestSettings(timeout=2), client=client)


def test_without_a_client_a_url_gets_its_own_and_a_file_needs_none(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    path.write_bytes(b"<rss/>")
    assert feeds.fetch(str(path), settings=IngestSettings(), client=None).content == b"<rss/>"
    with serving() as server:
        server.routes["/old"] = Route(b"", status=302, headers={"Location": "/new"})
        server.routes["/new"] = Route(b"<rss/>")
        fetched = feeds.fetch(server.url("/old"), settings=IngestSettings(), client=None)
    assert (fetched.content, fetched.location) == (b"<rss/>", server.url("/new"))
