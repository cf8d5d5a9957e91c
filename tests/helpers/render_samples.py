"""Plain-data digests for render tests, and an HTML parser that records what a client sees."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser

from digest.config import Settings
from digest.render.renderer import (
    ArticleView,
    Recipient,
    Renderer,
    RenderOptions,
    Segment,
    TopicView,
)

BASE = "https://news.example.org"
SITE = "https://www.example.org"
DAY = date(2025, 3, 1)  # 1 Ramadan 1446
TOPICS = (
    TopicView("economy", "اقتصاد", "Economy"),
    TopicView("tech", "تقنية", "Technology"),
    TopicView("sports", "رياضة", "Sports"),
)
SUMMARY = (
    "قال محللون في «السوق المالية» إن المؤشرات تحسّنت خلال الأسبوع، وتوقعوا استمرار "
    "الارتفاع؛ فهل تستمر الموجة؟ وأضافوا أن أسهم Apple وMicrosoft قادت المكاسب بنسبة 2.5%."
)


def options(settings: Settings, **changes: object) -> RenderOptions:
    base = RenderOptions.from_settings(settings)
    return dataclasses.replace(base, base_url=BASE, site_url=SITE, **changes)  # type: ignore[arg-type]


def renderer(settings: Settings, **changes: object) -> Renderer:
    return Renderer(options(settings, **changes))


def article(number: int, *, topic: str | None = None, **changes: object) -> ArticleView:
    slugs = [t.slug for t in TOPICS]
    values: dict[str, object] = {
        "id": number,
        "title": f"ارتفاع مؤشر S&P 500 بنسبة 1.5% في الجلسة رقم {number}",
        "url": f"https://news.example.org/articles/{number}",
        "summary": SUMMARY,
        "image_url": f"https://img.example.org/{number}.jpg",
        "topics": (topic or slugs[number % len(slugs)],),
        "body_chars": 900 * (1 + number % 5),
    }
    values.update(changes)
    return ArticleView(**values)  # type: ignore[arg-type]


def segment(count: int = 6, **changes: object) -> Segment:
    values: dict[str, object] = {
        "articles": tuple(article(n) for n in range(1, count + 1)),
        "topics": TOPICS,
        "date": DAY,
        "list_name": "النشرة اليومية",
        "locale": "ar",
        "tracking": False,
    }
    values.update(changes)
    return Segment(**values)  # type: ignore[arg-type]


def recipient(name: str = "سارة", token: str = "tok") -> Recipient:
    return Recipient(
        name=name,
        view_token=f"v-{token}",
        unsubscribe_token=f"u-{token}",
        preferences_token=f"p-{token}",
        open_token=f"o-{token}",
        click_token=f"c-{token}",
        confirm_token=f"k-{token}",
    )


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class ParsedEmail:
    elements: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    @property
    def visible_text(self) -> str:
        return "".join(self.texts)


class _Collector(HTMLParser):
    """Records every element (with the text inside <a> elements) the way a browser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = ParsedEmail()
        self._open_links: list[Element] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.parsed.elements.append(element)
        if tag == "a":
            self._open_links.append(element)
        if tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open_links:
            self._open_links.pop()
        if tag in ("style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parsed.texts.append(data)
        for link in self._open_links:
            link.text += data

    def handle_comment(self, data: str) -> None:
        self.parsed.comments.append(data)


def parse(html: str) -> ParsedEmail:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.parsed
