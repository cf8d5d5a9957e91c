"""Web pages from `templates/web/`: one Jinja2 environment per language, HTML responses.

Every word comes from the gettext catalogs (Arabic by default, English by the subscriber's
locale); pages are right-to-left for Arabic, carry their CSS inline and load nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.render.i18n import DIRECTIONS, TEMPLATES, Digits, Language, load_language

# Pages load nothing from elsewhere: no scripts at all, inline styles, images only from here.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

# Problems shown on a page of their own, with their HTTP status.
PROBLEMS = {
    "invalid_link": 400,
    "bad_request": 400,
    "expired_form": 400,
    "not_found": 404,
    "method": 405,
    "too_large": 413,
    "too_many": 429,
    "error": 500,
    "unavailable": 503,
}


class Pages:
    """Renders `web/*.html.j2` in a language; `publisher` names are shown in the header."""

    def __init__(
        self,
        *,
        publisher: str,
        publisher_en: str,
        default_locale: str = "ar",
        digits: Digits = "arabic",
    ) -> None:
        self.default_locale = default_locale
        self._publisher = {"ar": publisher, "en": publisher_en or publisher}
        self._languages = {loc: load_language(loc, digits) for loc in DIRECTIONS}
        self._envs = {loc: self._environment(lang) for loc, lang in self._languages.items()}

    def locale(self, wanted: str | None) -> str:
        """`wanted` when pages exist in it, else the default language."""
        return wanted if wanted in self._envs else self.default_locale

    def language(self, locale: str | None) -> Language:
        return self._languages[self.locale(locale)]

    def html(self, name: str, locale: str | None, context: Mapping[str, Any]) -> str:
        chosen = self.locale(locale)
        template = self._envs[chosen].get_template(f"web/{name}.html.j2")
        return template.render({"publisher": self._publisher[chosen], **context})

    def render(
        self,
        name: str,
        locale: str | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return HTMLResponse(
            self.html(name, locale, context),
            status_code=status,
            headers={**PAGE_HEADERS, **(headers or {})},
        )

    def problem(
        self,
        problem: str,
        locale: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The page of a problem (invalid link, expired form, …) with its status code."""
        return self.render(
            "problem", locale, status=PROBLEMS[problem], headers=headers, problem=problem
        )

    def _environment(self, language: Language) -> Environment:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(  # type: ignore[attr-defined]
            _Catalog(language), newstyle=True
        )
        env.filters["number"] = language.number
        env.globals.update(
            lang=language.locale, dir=language.direction, rtl=language.rtl, align=language.align
        )
        return env


class _Catalog:
    def __init__(self, language: Language) -> None:
        self.gettext = language.translations.gettext
        self.ngettext = language.raw_ngettext
