"""Web pages from `templates/web/`: one Jinja2 environment per language, HTML responses.

Every word comes from the gettext catalogs (Arabic by default, English by the subscriber's
locale); pages are right-to-left for Arabic, carry their CSS inline and load nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from jinja2 import Environment, StrictUndefined, select_autoescape

from digest.render.i18n import DIRECTIONS, Digits, Language, load_language
from digest.render.loaders import locale_dir, template_loader
from digest.settings.brand import BrandSettings

# Pages load nothing from elsewhere: no scripts at all, inline styles, images only from here
# (and the brand's logo from its host: `with_image_origin`).
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

_PLAIN_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")  # urlsplit lower-cases it

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
    """Renders `web/*.html.j2` in a language; every page gets `brand`, the publisher's look
    in that language (name, logo, colours)."""

    def __init__(
        self,
        *,
        brand: BrandSettings,
        default_locale: str = "ar",
        digits: Digits = "arabic",
        templates_dir: Path | None = None,  # the publisher's templates ([render] templates_dir)
    ) -> None:
        self.default_locale = default_locale
        self._brand = {loc: brand.view(loc) for loc in DIRECTIONS}
        self._headers = with_image_origin(PAGE_HEADERS, brand.logo_url)
        self._templates_dir = templates_dir
        catalogs = locale_dir(templates_dir)
        self._languages = {loc: load_language(loc, digits, catalogs) for loc in DIRECTIONS}
        self._envs = {loc: self._environment(lang) for loc, lang in self._languages.items()}

    def locale(self, wanted: str | None) -> str:
        """`wanted` when pages exist in it, else the default language."""
        return wanted if wanted in self._envs else self.default_locale

    def language(self, locale: str | None) -> Language:
        return self._languages[self.locale(locale)]

    def html(self, name: str, locale: str | None, context: Mapping[str, Any]) -> str:
        chosen = self.locale(locale)
        template = self._envs[chosen].get_template(f"web/{name}.html.j2")
        brand = self._brand[chosen]
        return template.render({"brand": brand, "publisher": brand.name, **context})

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
            headers={**self._headers, **(headers or {})},
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
            loader=template_loader(self._templates_dir),
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


def with_image_origin(headers: Mapping[str, str], url: str) -> dict[str, str]:
    """`headers` whose Content-Security-Policy also lets pages show images from `url`'s
    origin (the brand's logo); unchanged when `url` is empty or not a plain https host."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return dict(headers)
    host = parts.hostname or ""
    if parts.scheme != "https" or not _PLAIN_HOST.fullmatch(host):
        return dict(headers)
    origin = f"https://{host}" + (f":{port}" if port else "")
    policy = headers["Content-Security-Policy"]
    policy = policy.replace("img-src 'self'", f"img-src 'self' {origin}")
    return {**headers, "Content-Security-Policy": policy}


class _Catalog:
    def __init__(self, language: Language) -> None:
        self.gettext = language.translations.gettext
        self.ngettext = language.raw_ngettext
