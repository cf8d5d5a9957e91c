"""Render emails: compile once per segment (Jinja2 → MJML → HTML), personalise per recipient.

Compiling renders the templates with unguessable slot markers where per-recipient values go
(greeting, tokens in links), then splits the HTML and text once into literal chunks and
slots; `CompiledMessage.personalise` is then a join.  Preview is the same path with
`Segment.tracking` off.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from digest.catalog.views import ArticleView, TopicView
from digest.config import Settings
from digest.errors import TemplateError
from digest.render.compiled import (
    CompiledDigest,
    CompiledMessage,
    Greeting,
    click_slot,
    default_link_suffix,
)
from digest.render.data import (
    TITLE_CHARS,
    Recipient,
    RenderedMessage,
    SkippedArticle,
    clean_text,
    place_articles,
    shorten,
    topic_order,
    usable_articles,
)
from digest.render.i18n import DIRECTIONS, Digits, Language, load_language
from digest.render.loaders import locale_dir, override_dir
from digest.render.required import require_way_out
from digest.render.slots import SlotMarkers
from digest.render.templates import MjmlRejected, Templates
from digest.selection.segments import Segment
from digest.settings.brand import BrandSettings
from digest.text.bidi import starts_rtl
from digest.text.placeholders import fill

__all__ = [
    "ArticleView",
    "CompiledDigest",
    "CompiledMessage",
    "Recipient",
    "RenderOptions",
    "RenderedMessage",
    "Renderer",
    "Segment",
    "SkippedArticle",
    "TopicView",
    "default_link_suffix",
]

logger = logging.getLogger(__name__)

_SUBJECT_TITLE_CHARS = 90


@dataclass(frozen=True)
class RenderOptions:
    """What rendering needs from the settings (copied once at the entry point)."""

    base_url: str
    site_url: str
    brand: BrandSettings
    digits: Digits = "arabic"
    subject: str = "نشرتك اليومية: {top_title}"
    subject_en: str = "Your daily digest: {top_title}"
    max_html_bytes: int = 100_000
    templates_dir: Path | None = None  # the publisher's templates; None: the built-ins
    # Refuse a digest without its unsubscribe link or postal address (off only for
    # `digest templates check`, which reports them itself, part by part).
    require_way_out: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderOptions:
        render = settings.render
        return cls(
            base_url=settings.web.base_url,
            site_url=render.site_url or settings.web.base_url,
            brand=settings.brand,
            digits=render.digits,
            subject=render.subject,
            subject_en=render.subject_en,
            max_html_bytes=render.max_html_bytes,
            templates_dir=override_dir(settings),
        )


@dataclass(frozen=True)
class _Card:
    id: int
    title: str
    summary: str
    href: str
    image_url: str | None
    minutes: int | None


class Renderer:
    """Compiles emails; holds one template environment per language (built once)."""

    def __init__(self, options: RenderOptions) -> None:
        self.options = options
        self._templates = {loc: self._load(loc) for loc in DIRECTIONS}
        try:
            for templates in self._templates.values():
                templates.check()
        except TemplateError as exc:
            if options.templates_dir is None:
                raise
            raise TemplateError(f"render.templates_dir ({options.templates_dir}): {exc}") from None
        self._greetings = {loc: _greeting(t) for loc, t in self._templates.items()}

    def templates(self, locale: str) -> Templates:
        if locale not in self._templates:
            load_language(locale)  # raises the clear "unknown locale" error
        return self._templates[locale]

    def greeting(self, locale: str) -> Greeting:
        self.templates(locale)
        return self._greetings[locale]

    def compile_digest(
        self, segment: Segment, *, link_suffix: Callable[[str], str] = default_link_suffix
    ) -> CompiledDigest:
        """Compile the digest of `segment`, dropping the lowest-ranked articles to fit."""
        templates = self.templates(segment.locale)
        order = topic_order(segment)
        usable, skipped = usable_articles(segment.articles)
        lead = {a.id for a in segment.articles[: segment.lead]}
        placement = place_articles([a for a in usable if a.id not in lead], order)
        build = _DigestBuild(self, templates, segment, order, placement, link_suffix)
        try:
            compiled = self._fit(usable, build)
        except MjmlRejected as first:
            rejected = _isolate(usable, build, templates.directory)
            if not rejected:
                raise first.as_template_error(templates.directory) from None
            skipped += rejected
            bad = {s.article_id for s in rejected}
            usable = [a for a in usable if a.id not in bad]
            try:
                compiled = self._fit(usable, build)
            except MjmlRejected as again:
                raise again.as_template_error(templates.directory) from None
        if self.options.require_way_out:
            address = self.options.brand.view(segment.locale).postal_address
            require_way_out(compiled, address, self.options.templates_dir)
        for item in skipped:
            logger.warning("article %s skipped: %s", item.article_id, item.reason)
        kept = set(compiled.article_ids)
        return dataclasses.replace(
            compiled,
            dropped_ids=tuple(a.id for a in usable if a.id not in kept),
            skipped=tuple(skipped),
        )

    def compile_confirmation(self, *, list_name: str, locale: str, day: date) -> CompiledMessage:
        """The double opt-in email: a button to `{base}/confirm/{confirm_token}`."""
        markers = SlotMarkers()
        context = {"confirm_url": f"{self.options.base_url}/confirm/{markers('confirm')}"}
        return self._compile_account("confirmation", locale, list_name, day, markers, context)

    def compile_welcome(
        self,
        *,
        list_name: str,
        locale: str,
        day: date,
        topics: Sequence[TopicView] = (),
        cadence: str = "daily",
    ) -> CompiledMessage:
        """The welcome email sent once a subscription is confirmed."""
        markers = SlotMarkers()
        base = self.options.base_url
        context = {
            "topic_names": [t.label(locale) for t in topics],
            "cadence": cadence,
            "preferences_url": f"{base}/p/{markers('preferences')}",
            "unsubscribe_url": f"{base}/u/{markers('unsubscribe')}",
        }
        return self._compile_account("welcome", locale, list_name, day, markers, context)

    def _load(self, locale: str) -> Templates:
        folder = self.options.templates_dir
        language = load_language(locale, self.options.digits, locale_dir(folder))
        return Templates(folder, language)

    def _fit(self, articles: Sequence[ArticleView], build: _DigestBuild) -> CompiledDigest:
        """The digest with the most top-ranked articles whose HTML fits the size budget."""
        budget = self.options.max_html_bytes
        full = build(articles, more=0)
        if full.html_bytes <= budget:
            return full
        best: CompiledDigest | None = None
        low, high = 0, len(articles) - 1
        while low <= high:
            middle = (low + high) // 2
            candidate = build(articles[:middle], more=len(articles) - middle)
            if candidate.html_bytes <= budget:
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        if best is None:
            raise TemplateError(
                f"the digest exceeds {budget} bytes even without articles: "
                "shorten the templates or raise render.max_html_bytes"
            )
        return best

    def _compile_account(
        self,
        kind: str,
        locale: str,
        list_name: str,
        day: date,
        markers: SlotMarkers,
        extra: Mapping[str, Any],
    ) -> CompiledMessage:
        templates = self.templates(locale)
        context = _common_context(self.options, templates.language, list_name, day, markers) | {
            "view_url": None,
            "preferences_url": None,
            "unsubscribe_url": None,
            "pixel_url": None,
            **extra,
        }
        text = templates.text(f"email/{kind}.txt.j2", context)
        # Lines shared with the HTML twin (preheader, why, ...) are set in the text template.
        context |= {**text.exported, "title": text["subject"]}
        try:
            html = templates.html(f"email/{kind}.mjml.j2", context)
        except MjmlRejected as exc:
            raise exc.as_template_error(templates.directory) from None
        return CompiledMessage(
            subject=_one_line(text["subject"]),
            preheader=_one_line(text["preheader"]),
            locale=locale,
            html_template=markers.split(html),
            text_template=markers.split(text.text),
            greeting=self.greeting(locale),
            base_url=self.options.base_url,
        )


class _DigestBuild:
    """Builds the digest of one segment for a given prefix of its ranked articles."""

    def __init__(
        self,
        renderer: Renderer,
        templates: Templates,
        segment: Segment,
        order: Sequence[TopicView],
        placement: Mapping[int, str],
        link_suffix: Callable[[str], str],
    ) -> None:
        self.renderer = renderer
        self.templates = templates
        self.segment = segment
        self.order = order
        self.placement = placement
        self.link_suffix = link_suffix

    def __call__(self, articles: Sequence[ArticleView], *, more: int) -> CompiledDigest:
        options, segment, language = self.renderer.options, self.segment, self.templates.language
        markers = SlotMarkers()
        base = options.base_url
        links: dict[str, str] = {}
        cards = [self._card(a, markers, links) for a in articles]
        sections = [
            {"name": topic.label(segment.locale), "cards": chosen}
            for topic in self.order
            if (chosen := [c for c in cards if self.placement.get(c.id) == topic.slug])
        ]
        context = _common_context(options, language, segment.list_name, segment.date, markers) | {
            "cadence": segment.cadence,
            "count": len(cards),
            "top_titles": [c.title for c in cards[:2]],
            "lead": [c for c in cards if c.id not in self.placement],
            "sections": sections,
            "note": segment.note.splitlines(),
            "more": {"count": more, "href": self._href(options.site_url, markers, links)}
            if more
            else None,
            "view_url": f"{base}/v/{markers('view')}",
            "unsubscribe_url": f"{base}/u/{markers('unsubscribe')}",
            "preferences_url": f"{base}/p/{markers('preferences')}",
            "pixel_url": f"{base}/o/{markers('open')}.gif" if segment.tracking else None,
        }
        text = self.templates.text("email/digest.txt.j2", context)
        context |= {
            "intro": text["intro"],
            "preheader": text["preheader"],
            "more_text": text["more_text"],
            "title": f"{context['publisher']} — {context['list_name']}",
        }
        html = self.templates.html("email/digest.mjml.j2", context)
        return CompiledDigest(
            subject=self._subject(language, cards, context),
            preheader=_one_line(text["preheader"]),
            locale=segment.locale,
            html_template=markers.split(html),
            text_template=markers.split(text.text),
            greeting=self.renderer.greeting(segment.locale),
            base_url=base,
            article_ids=tuple(c.id for c in cards),
            links=links,
        )

    def _card(self, article: ArticleView, markers: SlotMarkers, links: dict[str, str]) -> _Card:
        return _Card(
            id=article.id,
            title=article.title,
            summary=article.summary,
            href=self._href(article.url, markers, links),
            image_url=article.image_url,
            minutes=article.minutes,
        )

    def _href(self, url: str, markers: SlotMarkers, links: dict[str, str]) -> str:
        """The link as sent: direct without tracking, else `{base}/c/{click token}{suffix}`,
        the token signed over this link (a slot of its own)."""
        if not self.segment.tracking:
            return url
        suffix = quote(self.link_suffix(url), safe="._~-")
        links[suffix] = url
        return f"{self.renderer.options.base_url}/c/{markers(click_slot(suffix))}{suffix}"

    def _subject(
        self, language: Language, cards: Sequence[_Card], context: Mapping[str, Any]
    ) -> str:
        options = self.renderer.options
        template = self.segment.subject or (
            options.subject if language.locale == "ar" else options.subject_en
        )
        top = cards[0].title if cards else ""
        values = {
            "top_title": shorten(top, _SUBJECT_TITLE_CHARS),
            "count": language.number(len(cards)),
            "list_name": context["list_name"],
            "date": context["date_gregorian"],
            "publisher": context["publisher"],
        }
        subject = _one_line(fill(template, values)).strip(" :-–—،")
        return starts_rtl(subject) if language.rtl else subject


def _isolate(
    articles: Sequence[ArticleView], build: _DigestBuild, directory: Path
) -> list[SkippedArticle]:
    """The articles whose own content makes MRML fail.

    A card that fails is tried again with plain stand-in text: if that fails too, the
    template is at fault, and that is an error rather than a reason to drop the article.
    """
    rejected = []
    for article in articles:
        try:
            build([article], more=0)
        except MjmlRejected as exc:
            try:
                build([_stand_in(article)], more=0)
            except MjmlRejected as template_fault:
                raise template_fault.as_template_error(directory) from None
            rejected.append(SkippedArticle(article.id, f"the MJML parser rejects it: {exc.reason}"))
    return rejected


def _stand_in(article: ArticleView) -> ArticleView:
    """`article` with harmless text and URLs, in the same shape (summary, image or not)."""
    return dataclasses.replace(
        article,
        title="خبر",
        summary="ملخص" if article.summary else "",
        url="https://example.org/",
        image_url="https://example.org/image.jpg" if article.image_url else None,
    )


def _common_context(
    options: RenderOptions, language: Language, list_name: str, day: date, markers: SlotMarkers
) -> dict[str, Any]:
    """What the header and footer of every email show (`brand`: the publisher's look)."""
    brand = options.brand.view(language.locale)
    return {
        "brand": brand,
        "publisher": brand.name,
        "list_name": clean_text(list_name, TITLE_CHARS),
        "date_gregorian": language.gregorian(day),
        "date_hijri": language.hijri(day),
        "greeting": markers("greeting"),
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _greeting(templates: Templates) -> Greeting:
    text = templates.text("email/greeting.txt.j2", {})
    return Greeting(text["named"], text["anonymous"], templates.language.rtl)
