"""Feeds: register them with their default topics, and fetch them (HTTP or local file).

Fetching is bounded: one deadline from connect to last byte and a cap on the decoded size
(see `digest.ingest.download`); a conditional GET (ETag / Last-Modified) answered 304 costs
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from sqlmodel import Session, col, select

from digest.config import IngestSettings
from digest.db.models import Feed, FeedTopic, Topic
from digest.errors import AlreadyExists, InvalidInput, NotFound
from digest.ingest.documents import FeedError
from digest.ingest.download import ACCEPT_ENCODING, Deadline, read_body, timed_out, too_large
from digest.text.sanitize import is_web_url

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, application/json;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """A fetched document, or `content=None` when the server said 304 Not Modified."""

    content: bytes | None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    location: str = ""  # where it finally came from (after redirects): the base of links


def normalize_location(location: str) -> str:
    """An http(s) URL as given, or a local path made absolute (file:// URLs included)."""
    location = location.strip()
    if not location:
        raise InvalidInput("a feed needs a URL or a file path")
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        if not is_web_url(location):
            raise InvalidInput(f"feed URL {location!r} has no host")
        return location
    if scheme == "file":
        return str(Path(unquote(urlsplit(location).path)).resolve())
    if scheme and len(scheme) > 1:
        raise InvalidInput(f"feed {location!r}: only http(s) URLs and local files are supported")
    return str(Path(location).expanduser().resolve())


def is_local(location: str) -> bool:
    return urlsplit(location).scheme.lower() not in ("http", "https")


def add_feed(session: Session, *, url: str, topics: Sequence[Topic] = ()) -> Feed:
    location = normalize_location(url)
    if is_local(location) and not Path(location).is_file():
        raise InvalidInput(f"feed file {location} does not exist")
    if session.exec(select(Feed).where(Feed.url == location)).first() is not None:
        raise AlreadyExists(f"feed {location} already exists")
    feed = Feed(url=location)
    session.add(feed)
    session.flush()
    assert feed.id is not None
    for topic in topics:
        assert topic.id is not None
        session.add(FeedTopic(feed_id=feed.id, topic_id=topic.id))
    session.flush()
    return feed


def get_feed(session: Session, url: str) -> Feed:
    """The feed registered under `url` (as given, or normalised)."""
    candidates = {url.strip()}
    with suppress(InvalidInput):
        candidates.add(normalize_location(url))
    feed = session.exec(select(Feed).where(col(Feed.url).in_(candidates))).first()
    if feed is None:
        raise NotFound(f"no feed {url}: see `digest feeds list`")
    return feed


def remove_feed(session: Session, url: str) -> Feed:
    """Forget a feed; its articles stay (they may already be in digests)."""
    feed = get_feed(session, url)
    session.delete(feed)
    session.flush()
    return feed


def all_feeds(session: Session) -> list[Feed]:
    return list(session.exec(select(Feed).order_by(col(Feed.id))))


def feed_topic_slugs(session: Session) -> dict[int, list[str]]:
    """feed id -> slugs of its default topics."""
    rows = session.exec(
        select(FeedTopic.feed_id, Topic.slug)
        .join(Topic, col(Topic.id) == col(FeedTopic.topic_id))
        .order_by(col(Topic.slug))
    )
    found: dict[int, list[str]] = {}
    for feed_id, slug in rows:
        found.setdefault(feed_id, []).append(slug)
    return found


def feed_as_dict(feed: Feed, topic_slugs: Sequence[str]) -> dict[str, object]:
    return {
        "url": feed.url,
        "title": feed.title,
        "topics": list(topic_slugs),
        "etag": feed.etag,
        "last_modified": feed.last_modified,
        "last_fetched_at": feed.last_fetched_at.isoformat() if feed.last_fetched_at else None,
        "last_error": feed.last_error,
    }


def fetch(
    location: str,
    *,
    settings: IngestSettings,
    client: httpx.Client | None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """The document at `location`; FeedError (saying what to fix) when it cannot be had.

    `client`: for http(s) URLs (None: one made for this fetch); a local file needs none."""
    if is_local(location):
        return _read_file(Path(location), settings.max_bytes)
    if client is None:
        with httpx.Client(follow_redirects=True) as own:
            return fetch(
                location, settings=settings, client=own, etag=etag, last_modified=last_modified
            )
    headers = {
        "Accept": ACCEPT,
        "Accept-Encoding": ACCEPT_ENCODING,
        "User-Agent": settings.user_agent,
        # A new connection per fetch: its socket is known to the deadline's watchdog.
        "Connection": "close",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with Deadline(settings.timeout) as deadline:
        try:
            return _get(client, location, headers, settings.max_bytes, deadline)
        except httpx.TimeoutException:
            raise timed_out(settings.timeout) from None
        except httpx.HTTPError as exc:
            if deadline.expired:  # the watchdog cut the connection
                raise timed_out(settings.timeout) from None
            raise FeedError(f"cannot fetch: {exc or type(exc).__name__}") from None


def _get(
    client: httpx.Client, location: str, headers: dict[str, str], max_bytes: int, deadline: Deadline
) -> Fetched:
    with client.stream(
        "GET",
        location,
        headers=headers,
        timeout=deadline.remaining(),
        follow_redirects=True,
        extensions={"trace": deadline.trace},
    ) as response:
        if response.status_code == 304:
            return Fetched(
                None,
                etag=response.headers.get("etag", headers.get("If-None-Match")),
                last_modified=response.headers.get(
                    "last-modified", headers.get("If-Modified-Since")
                ),
                location=str(response.url),
            )
        if response.status_code != 200:
            raise FeedError(f"HTTP {response.status_code} {response.reason_phrase}".strip())
        content = read_body(response, max_bytes, deadline)
        return Fetched(
            content,
            content_type=response.headers.get("content-type"),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            location=str(response.url),
        )


def _read_file(path: Path, max_bytes: int) -> Fetched:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise too_large(max_bytes, f"the file has {size} bytes")
        content = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror or exc}") from None
    return Fetched(content, location=path.as_uri())
