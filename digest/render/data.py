"""Plain data in and out of rendering: recipients, messages, and the checks on articles.

Articles and topics (`digest.catalog.views`) and segments (`digest.selection.segments`) come
from the stages before rendering.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.catalog.views import ArticleView, TopicView
from digest.errors import InvalidInput
from digest.selection.segments import Segment
from digest.tracking.tokens import Purpose, RecipientTokens, Signer

TITLE_CHARS, SUMMARY_CHARS = 200, 320
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# Tokens of a preview: the links show their shape, and lead to the web app's generic answer.
PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class Recipient:
    """The per-subscriber parts of a message: a name and ready-made (signed) tokens.

    Links: view `{base}/v/{view_token}`, unsubscribe `{base}/u/{unsubscribe_token}`,
    preferences `{base}/p/{preferences_token}`, open pixel `{base}/o/{open_token}.gif`,
    article `{base}/c/{click token of that link}{link suffix}`, confirm
    `{base}/confirm/{confirm_token}`. A digest's click tokens come from `click_tokens`
    (link hash -> token, signed over the pair); without it every link gets `click_token`.
    """

    name: str = ""
    view_token: str = ""
    unsubscribe_token: str = ""
    preferences_token: str = ""
    open_token: str = ""
    click_token: str = ""
    confirm_token: str = ""
    click_tokens: Callable[[str], str] | None = None

    @classmethod
    def with_tokens(cls, name: str, tokens: RecipientTokens) -> Recipient:
        """A digest's recipient: their name and that delivery's signed tokens."""
        return cls(
            name=name,
            view_token=tokens.view,
            unsubscribe_token=tokens.unsubscribe,
            preferences_token=tokens.preferences,
            open_token=tokens.open,
            click_tokens=tokens.click,
        )

    @classmethod
    def preview(cls, name: str = "") -> Recipient:
        """The recipient of a preview: placeholder tokens in every link."""
        token = PREVIEW_TOKEN
        return cls(
            name=name,
            view_token=token,
            unsubscribe_token=token,
            preferences_token=token,
            open_token=token,
            click_token=token,
        )

    @classmethod
    def of_subscription(
        cls, name: str, signer: Signer, subscriber_id: int, list_id: int, *purposes: Purpose
    ) -> Recipient:
        """A recipient of a subscription's own emails (confirmation, welcome): tokens for
        `purposes` among unsubscribe, preferences and confirm, naming (subscriber, list)."""
        signed = {p: signer.dumps(p, subscriber_id, list_id) for p in purposes}
        return cls(
            name=name,
            unsubscribe_token=signed.get(Purpose.UNSUBSCRIBE, ""),
            preferences_token=signed.get(Purpose.PREFERENCES, ""),
            confirm_token=signed.get(Purpose.CONFIRM, ""),
        )


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
