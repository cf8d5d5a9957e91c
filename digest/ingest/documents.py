"""Feed documents (RSS, Atom via feedparser; JSON Feed) turned into clean, plain `FeedItem`s.

Decisions: an item needs a link (or a guid that is an http(s) URL), else it is skipped with a
reason; an item without a title takes the first words of its text; an item without a usable
date (none, unparseable, before 1990 or more than a day ahead) gets `published_at=None`;
a malformed document is refused as a whole, so a half-parsed feed never overwrites articles,
and so is one nested deeper than `max_depth` (an item whose HTML is, is skipped). What is
stored is cleaned (no NUL, control or bidi override characters: `digest.text.controls`) and
capped (title, summary, author, categories, URLs), whatever the feed sent.
"""

from __future__ import annotations

import io
import json
import re
import xml.sax
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser

from digest.errors import DigestError
from digest.ingest.encodings import xml_content_type
from digest.ingest.nesting import html_too_deep, json_too_deep, xml_too_deep
from digest.text.arabic import is_mostly_arabic
from digest.text.controls import clean_line, clean_text
from digest.text.sanitize import (
    absolute_url,
    clean_html,
    first_image,
    html_to_text,
    plain_text,
    summary_of,
    truncate_words,
)

SUMMARY_CHARS = 280
TITLE_CHARS = 120
# What is stored at most (render cuts shorter): a feed's one-word 10 MB title stays out.
STORED_TITLE_CHARS = 500
STORED_SUMMARY_CHARS = 1000
AUTHOR_CHARS = 200
CATEGORY_CHARS = 100
MAX_CATEGORIES = 50
URL_CHARS = 2048
MAX_DEPTH = 100  # the default of `[ingest] max_depth`
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.I)
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")


class FeedError(DigestError):
    """A feed could not be fetched or read; the message says what went wrong."""


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed, sanitised and ready to store."""

    guid: str | None
    url: str
    title: str
    summary: str
    body_html: str
    image_url: str | None
    author: str | None
    published_at: datetime | None
    language: str | None
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    """An item left out, and why."""

    ref: str
    reason: str


@dataclass
class ParsedFeed:
    title: str = ""
    items: list[FeedItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class _RawItem:
    """An item as the feed wrote it, before cleaning (both parsers produce this)."""

    guid: str | None
    link: str | None
    title: str
    title_is_html: bool | None
    summary_html: str
    content_html: str
    images: list[str]
    author: str
    published: datetime | None
    categories: list[str]
    language: str | None


def canonical_url(url: str) -> str:
    """The URL without fragment and tracking parameters, scheme and host lower-cased.

    ValueError if it cannot be split (a malformed host such as "http://[::1").
    """
    parts = urlsplit(url.strip())
    # Parameters are kept as written (re-encoding could change what the server sees).
    kept = [p for p in parts.query.split("&") if p and not _TRACKING_PARAMS.match(p.split("=")[0])]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "&".join(kept), "")
    )


def parse_document(
    content: bytes,
    *,
    content_type: str | None,
    location: str,
    now: datetime,
    max_depth: int = MAX_DEPTH,
) -> ParsedFeed:
    """Every item of an RSS, Atom or JSON Feed document; FeedError if it is none of these."""
    if not content.strip():
        raise FeedError("the response is empty")
    if is_json(content, content_type):
        if json_too_deep(content, max_depth):
            raise too_deep(max_depth)
        title, raws = _parse_json_feed(content, location)
    else:
        if xml_too_deep(content, max_depth):
            raise too_deep(max_depth)
        title, raws = _parse_xml_feed(content, xml_content_type(content, content_type), location)
    return _finish_all(title, raws, now, max_depth=max_depth)


def too_deep(max_depth: int) -> FeedError:
    return FeedError(f"the document nests deeper than {max_depth} levels (see ingest.max_depth)")


@dataclass
class XmlPart:
    """A part of a big RSS/Atom document, parsed (see `parse_xml_part`)."""

    parsed: ParsedFeed
    entries: int  # the items feedparser found in the part
    encoding: str  # what feedparser decoded the part as
    encoding_guessed: bool  # the encoding it was told did not decode the part: another did


def parse_xml_part(
    content: bytes,
    *,
    declared: str,
    location: str,
    now: datetime,
    first_number: int,
    max_depth: int = MAX_DEPTH,
) -> XmlPart:
    """One RSS/Atom document made of some whole items of a bigger one (`digest.ingest.parallel`),
    read as `parse_document` reads a document, its items numbered from `first_number`.
    `declared`: the big document's `xml_content_type`."""
    found: dict[str, Any] = {}
    title, raws = _parse_xml_feed(content, declared, location, found)
    problem = found.get("bozo_exception")
    guessed = isinstance(
        problem, feedparser.CharacterEncodingOverride | feedparser.CharacterEncodingUnknown
    )
    return XmlPart(
        _finish_all(title, raws, now, first_number, max_depth),
        len(raws),
        str(found.get("encoding") or ""),
        guessed,
    )


def is_json(content: bytes, content_type: str | None) -> bool:
    return "json" in (content_type or "").lower() or content.lstrip()[:1] == b"{"


def _finish_all(
    title: str, raws: list[_RawItem], now: datetime, first: int = 1, max_depth: int = MAX_DEPTH
) -> ParsedFeed:
    parsed = ParsedFeed(title=clean_line(plain_text(title))[:500])
    for number, raw in enumerate(raws, start=first):
        item = _finish(raw, now, max_depth)
        if isinstance(item, Skipped):
            parsed.skipped.append(Skipped(item.ref or f"item #{number}", item.reason))
        else:
            parsed.items.append(item)
    return parsed


def _parse_xml_feed(
    content: bytes, declared: str, location: str, found: dict[str, Any] | None = None
) -> tuple[str, list[_RawItem]]:
    parsed = feedparser.parse(
        io.BytesIO(content),
        response_headers={"content-type": declared},
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        if "html" in declared.lower() or b"<html" in content[:2048].lower():
            raise FeedError("this is an HTML page, not a feed (RSS, Atom or JSON Feed)")
        raise FeedError(f"not a feed (RSS, Atom or JSON Feed): {problem or 'no feed element'}")
    if isinstance(problem, xml.sax.SAXException):
        raise FeedError(f"malformed XML: {problem}")
    if found is not None:
        found.update(encoding=parsed.get("encoding"), bozo_exception=problem)
    channel = parsed.get("feed", {})
    base = channel.get("link") or location
    language = channel.get("language")
    return channel.get("title", ""), [_from_entry(e, base, language) for e in parsed.entries]


def _from_entry(entry: Any, base: str, feed_language: str | None) -> _RawItem:
    # FeedParserDict.get maps aliases (and raises inside for a missing key): the keys read
    # with `_get` have no alias nor special case there, so a plain dict lookup gives the same
    # value, several times faster. "enclosures" and "updated_parsed" are special: its get.
    link = _get(entry, "feedburner_origlink") or _get(entry, "link")
    contents = [c for c in _get(entry, "content", []) if _get(c, "value")]
    html_contents = [c for c in contents if _get(c, "type", "") in _HTML_TYPES]
    content_html = _as_html((html_contents or contents or [{}])[0])
    summary_html = _as_html(_get(entry, "summary_detail") or {})
    if summary_html == content_html:
        summary_html = ""  # feedparser copies content into summary: the feed gave no summary
    images = [m.get("url", "") for m in _get(entry, "media_content", []) if _is_image(m)]
    images += [m.get("url", "") for m in _get(entry, "media_thumbnail", [])]
    images += [e.get("href", "") for e in entry.get("enclosures", []) if _is_image(e)]
    detail = _get(entry, "title_detail") or {}
    author_detail = _get(entry, "author_detail") or {}
    published = _get(entry, "published_parsed") or entry.get("updated_parsed")
    return _RawItem(
        guid=(_get(entry, "id") or "").strip() or None,
        link=absolute_url(link or "", base),
        title=_get(entry, "title", ""),
        title_is_html=True if _get(detail, "type", "") in _HTML_TYPES else None,
        summary_html=summary_html,
        content_html=content_html,
        images=[absolute_url(i, link or base) or "" for i in images],
        author=_get(author_detail, "name") or _get(entry, "author", ""),
        published=_struct_date(published),
        categories=[_get(t, "term") or _get(t, "label") or "" for t in _get(entry, "tags", [])],
        language=_get(detail, "language") or feed_language,
    )


_get = dict.get


def _as_html(detail: Any) -> str:
    """A feedparser text construct as HTML (plain text escaped, paragraphs kept)."""
    value = _get(detail, "value", "")
    if not value or _get(detail, "type", "text/html") in _HTML_TYPES:
        return str(value)
    return _paragraphs(str(value))


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _is_image(media: Any) -> bool:
    kind = (media.get("medium") or media.get("type") or "").lower()
    if kind:
        return kind == "image" or kind.startswith("image/")
    url = (media.get("url") or media.get("href") or "").lower().split("?")[0]
    return url.endswith(_IMAGE_EXTENSIONS)


def _struct_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = value[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _parse_json_feed(content: bytes, location: str) -> tuple[str, list[_RawItem]]:
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"malformed JSON: {exc}") from None
    except RecursionError:  # deeper than this thread's stack allows, under max_depth
        raise FeedError("malformed JSON: nested too deep to read") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise FeedError("not a JSON Feed: no https://jsonfeed.org/version/ version")
    items = document.get("items")
    if not isinstance(items, list):
        raise FeedError("not a JSON Feed: `items` is not a list")
    base = _text(document.get("home_page_url")) or location
    language = _text(document.get("language")) or None
    raws = [_from_json_item(i, base, language) for i in items if isinstance(i, dict)]
    return _text(document.get("title")), raws


def _from_json_item(item: dict[str, Any], base: str, feed_language: str | None) -> _RawItem:
    link = _text(item.get("url")) or _text(item.get("external_url"))
    content_html = _text(item.get("content_html"))
    if not content_html:
        content_html = _paragraphs(_text(item.get("content_text")))
    images = [_text(item.get("image")), _text(item.get("banner_image"))]
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict) and _text(attachment.get("mime_type")).startswith("image/"):
            images.append(_text(attachment.get("url")))
    authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    first_author = authors[0] if isinstance(authors, list) and authors else {}
    tags = item.get("tags")
    guid = item.get("id")
    return _RawItem(
        guid=str(guid).strip() or None if isinstance(guid, str | int) else None,
        link=absolute_url(link, base),
        title=_text(item.get("title")),
        title_is_html=False,
        summary_html=escape(_text(item.get("summary"))),
        content_html=content_html,
        images=[absolute_url(i, link or base) or "" for i in images if i],
        author=_text(first_author.get("name")) if isinstance(first_author, dict) else "",
        published=_iso_date(item.get("date_published") or item.get("date_modified")),
        categories=[_text(t) for t in tags] if isinstance(tags, list) else [],
        language=_text(item.get("language")) or feed_language,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _finish(raw: _RawItem, now: datetime, max_depth: int = MAX_DEPTH) -> FeedItem | Skipped:
    """Clean one raw item: sanitised body, plain title and summary, image, sane date; every
    text without control characters and capped."""
    guid = clean_line(raw.guid)[:URL_CHARS] or None if raw.guid else None
    link = raw.link or (guid if guid and absolute_url(guid, None) else None)
    ref = guid or clean_line(plain_text(raw.title))[:80]
    if not link:
        return Skipped(ref, "no link (and the guid is not a URL)")
    try:
        url = canonical_url(clean_line(link))
    except ValueError:
        return Skipped(ref, f"malformed link {link[:200]!r}")
    if html_too_deep(raw.content_html, max_depth) or html_too_deep(raw.summary_html, max_depth):
        return Skipped(ref or url, f"its HTML nests deeper than {max_depth} levels")
    # Without a separate body (an RSS description alone), the description is the body.
    body = clean_text(clean_html(raw.content_html or raw.summary_html, url))
    summary = clean_line(html_to_text(raw.summary_html)) if raw.content_html else ""
    # Empty only when the body has no text either.
    summary = _capped(summary or summary_of(body, SUMMARY_CHARS), STORED_SUMMARY_CHARS)
    title = _capped(
        clean_line(plain_text(raw.title, is_html=raw.title_is_html)), STORED_TITLE_CHARS
    )
    if not title:
        title = truncate_words(summary, TITLE_CHARS)
    if not title:
        return Skipped(ref or url, "no title and no text")
    image = next((clean_line(i) for i in raw.images if i), None) or first_image(body)
    categories = (clean_line(plain_text(c))[:CATEGORY_CHARS] for c in raw.categories)
    return FeedItem(
        guid=guid,
        url=url[:URL_CHARS],
        title=title,
        summary=summary,
        body_html=body,
        image_url=image if image and len(image) <= URL_CHARS else None,
        author=clean_line(plain_text(raw.author))[:AUTHOR_CHARS] or None,
        published_at=_sane_date(raw.published, now),
        language=_language(clean_line(raw.language or ""), f"{title} {summary}"),
        categories=tuple(dict.fromkeys(c for c in categories if c))[:MAX_CATEGORIES],
    )


def _capped(text: str, limit: int) -> str:
    """`truncate_words`, then cut even inside a word: a one-word text can be megabytes long."""
    text = truncate_words(text, limit)
    return text if len(text) <= limit + 1 else text[:limit].rstrip() + "…"


def _sane_date(value: datetime | None, now: datetime) -> datetime | None:
    if value is None or value < EARLIEST or value > now + FUTURE_SLACK:
        return None
    return value


def _language(declared: str | None, text: str) -> str | None:
    if declared and declared.strip():
        return declared.strip().replace("_", "-").split("-")[0].lower()[:16]
    return "ar" if is_mostly_arabic(text) else None
