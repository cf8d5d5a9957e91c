"""Plain data in and out of rendering: articles, topics, segments, recipients, messages."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

from digest.errors import InvalidInput

TITLE_CHARS, SUMMARY_CHARS = 200, 320
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# Characters of Arabic body text read in a minute (about 200 words of 5-6 letters).
CHARS_PER_MINUTE = 1100


@dataclass(frozen=True)
class TopicView:
    slug: str
    name: str
    name_en: str | None = None

    def label(self, locale: str) -> str:
        return self.name if locale == "ar" else (self.name_en or self.name)


@dataclass(frozen=True)
class ArticleView:
    """An article as an email shows it; `topics` are slugs, the primary topic first."""

    id: int
    title: str
    url: str
    summary: str = ""
    image_url: str | None = None
    published_at: datetime | None = None
    topics: tuple[str, ...] = ()
    reading_minutes: int | None = None
    body_chars: int = 0

    @property
    def primary_topic(self) -> str | None:
        return self.topics[0] if self.topics else None

    @property
    def minutes(self) -> int | None:
        """Reading time: given, or estimated from the body length (None: unknown)."""
        if self.reading_minutes:
            return self.reading_minutes
        if self.body_chars > 0:
            return max(1, math.ceil(self.body_chars / CHARS_PER_MINUTE))
        return None


@dataclass(frozen=True)
class Segment:
    """Subscribers who get the same digest: same articles, topic order, language, day.

    `articles` are ranked, best first: the size budget drops from the end. The editors'
    controls: the first `lead` articles (pinned) lead the digest above the topic sections,
    `note` (plain text) shows under the header, `subject` replaces the settings' template.
    """

    articles: tuple[ArticleView, ...]
    topics: tuple[TopicView, ...]
    date: date
    list_name: str
    locale: str = "ar"
    cadence: str = "daily"
    tracking: bool = True
    lead: int = 0
    note: str = ""
    subject: str | None = None


@dataclass(frozen=True)
class Recipient:
    """The per-subscriber parts of a message: a name and ready-made (signed) tokens.

    Links: view `{base}/v/{view_token}`, unsubscribe `{base}/u/{unsubscribe_token}`,
    preferences `{base}/p/{preferences_token}`, open pixel `{base}/o/{open_token}.gif`,
    article `{base}/c/{click_token}{link suffix}`, confirm `{base}/confirm/{confirm_token}`.
    """

    name: str = ""
    view_token: str = ""
    unsubscribe_token: str = ""
    preferences_token: str = ""
    open_token: str = ""
    click_token: str = ""
    confirm_token: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str
    locale: str
    article_ids: tuple[int, ...] = ()
    unsubscribe_url: str = ""


@dataclass(frozen=True)
class SkippedArticle:
    article_id: int
    reason: str


def topic_order(segment: Segment) -> list[TopicView]:
    """The segment's topics without repeats: the order of its sections."""
    if not segment.topics:
        raise InvalidInput("a segment needs at least one topic (its section order)")
    seen: dict[str, TopicView] = {}
    for topic in segment.topics:
        seen.setdefault(topic.slug, topic)
    return list(seen.values())


def place_articles(articles: Sequence[ArticleView], order: Sequence[TopicView]) -> dict[int, str]:
    """article id -> slug of its section: the first of the segment's topics (in the segment's
    order) that the article has, so sending, preview and view-in-browser place it alike."""
    offered = {t.slug for t in order}
    placement = {}
    for article in articles:
        slug = next((t.slug for t in order if t.slug in article.topics), None)
        if slug is None:
            raise InvalidInput(
                f"article {article.id} has topics {list(article.topics)}, none of the "
                f"segment's ({', '.join(sorted(offered))}): select only matching articles"
            )
        placement[article.id] = slug
    return placement


def usable_articles(
    articles: Sequence[ArticleView],
) -> tuple[list[ArticleView], list[SkippedArticle]]:
    """Articles with clean text and safe URLs; the others, with the reason they are left out."""
    usable: list[ArticleView] = []
    skipped: list[SkippedArticle] = []
    seen: set[int] = set()
    for article in articles:
        if article.id in seen:
            continue
        seen.add(article.id)
        title = clean_text(article.title, TITLE_CHARS)
        url = web_url(article.url)
        if not title:
            skipped.append(SkippedArticle(article.id, "it has no title"))
        elif url is None:
            skipped.append(SkippedArticle(article.id, f"its URL {article.url!r} is not http(s)"))
        else:
            usable.append(
                dataclasses.replace(
                    article,
                    title=title,
                    url=url,
                    summary=clean_text(article.summary, SUMMARY_CHARS),
                    image_url=web_url(article.image_url or ""),
                )
            )
    return usable, skipped


def clean_text(text: str, limit: int) -> str:
    """`text` on one line, without control characters, cut at a word to `limit` characters."""
    return shorten(" ".join(_CONTROL.sub("", text).split()), limit)


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, ending in an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ،,.;:-") + "…"


def web_url(url: str) -> str | None:
    """`url` if it is an absolute http(s) URL without spaces or control characters."""
    url = url.strip()
    if not url or _CONTROL.search(url) or any(c.isspace() for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None
