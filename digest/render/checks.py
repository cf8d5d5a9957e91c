"""`digest templates check`: compile every template, render every email in both languages
with sample data through MJML, read the publisher's web pages for names no page is given
(`page_names.py`), and report each problem with its file and line.

Fatal problems are those the engine would fail on (a syntax error, an unknown variable, MJML
that does not compile, a digest over the size budget even without articles) and a digest
without its unsubscribe link or the publisher's postal address: the law (CAN-SPAM) and
Gmail's and Yahoo's bulk-sender rules require both, so such a digest is refused. The others
(a missing plain-text twin, articles dropped to fit the budget) are warnings.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import TemplateSyntaxError

from digest.config import Settings
from digest.errors import DigestError, InvalidInput, TemplateError
from digest.render.compiled import CompiledMessage
from digest.render.i18n import DIRECTIONS, load_language
from digest.render.loaders import locale_dir, override_dir
from digest.render.page_names import unknown_page_names
from digest.render.renderer import Renderer, RenderOptions
from digest.render.samples import (
    SAMPLE_BASE,
    SAMPLE_DAY,
    SAMPLE_LIST,
    SAMPLE_TOPICS,
    sample_recipient,
    sample_segment,
)
from digest.render.templates import TemplateFault, Templates

__all__ = ["POSTAL_SENTINEL", "TemplateProblem", "check_templates"]

# Stand-ins the rendered digest must show: found in the output, they prove the templates
# print the reader's unsubscribe link and the publisher's postal address.
UNSUBSCRIBE_SENTINEL = "unsubscribe-sentinel-3f9c"
POSTAL_SENTINEL = "postal-address-sentinel-7b2e"
_UNLIMITED = 10**9  # bytes: a budget that never drops an article
_DIGEST_HTML, _DIGEST_TEXT = "email/digest.mjml.j2", "email/digest.txt.j2"


@dataclass(frozen=True)
class TemplateProblem:
    """One problem: `file` as the publisher finds it (their folder's path, or the built-in
    template's name), its line (1 when the problem is the file as a whole)."""

    file: str
    line: int
    message: str
    fatal: bool

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class _Found:
    """Problems as they are found, merged across the two languages."""

    override: Path | None
    seen: dict[tuple[str, int, str, bool], set[str]] = field(default_factory=dict)

    def add(self, name: str, line: int, message: str, *, fatal: bool, locale: str = "") -> None:
        key = (self.shown(name), max(line, 1), message, fatal)
        self.seen.setdefault(key, set()).update([locale] if locale else DIRECTIONS)

    def fault(self, exc: DigestError, locale: str, name: str) -> None:
        """A template that fails to compile: where the error says, else `name`."""
        if isinstance(exc, TemplateFault) and exc.file:
            name, line = exc.file, exc.line
        else:
            line = 1
        message = str(exc).removeprefix("template ")
        for where in (f"{name}:{line}: ", f"{name}: ", f"{name} "):
            message = message.removeprefix(where)
        self.add(name, line, message, fatal=True, locale=locale)

    def shown(self, name: str) -> str:
        """The publisher's own file when their folder has it, else the built-in's name."""
        if self.override is not None and (self.override / name).is_file():
            return str(self.override / name)
        return name

    def problems(self) -> list[TemplateProblem]:
        found = []
        for (file, line, message, fatal), locales in self.seen.items():
            if set(locales) != set(DIRECTIONS):
                message = f"{message} [{', '.join(sorted(locales))}]"
            found.append(TemplateProblem(file, line, message, fatal))
        return sorted(found, key=lambda p: (p.file, p.line, p.message))


def check_templates(settings: Settings, directory: Path | None) -> list[TemplateProblem]:
    """The problems of the templates in `directory` over the built-ins (None: the
    configured `render.templates_dir`, else the built-ins alone); [] when all is well."""
    override = directory if directory is not None else override_dir(settings)
    if override is not None and not override.is_dir():
        raise InvalidInput(f"templates folder {override} does not exist or is not a folder")
    found = _Found(override)
    try:
        templates = Templates(override, load_language("ar", "arabic", locale_dir(override)))
    except DigestError as exc:  # the folder's own locale/ lacks a catalog
        found.add(str(locale_dir(override)), 1, str(exc), fatal=True)
        return found.problems()
    names = templates.env.list_templates(extensions=["j2"])
    compiled = _compile_all(templates, names, found)
    _twins(names, found)
    if compiled and override is not None:  # web pages: read, since only routes render them
        builtins = Templates(None, templates.language).env
        for name, line, message in unknown_page_names(templates.env, builtins, override):
            found.add(name, line, message, fatal=True)
    if compiled:
        _render_all(settings, override, found)
    return found.problems()


def _compile_all(templates: Templates, names: list[str], found: _Found) -> bool:
    """Parse and compile every template (email and web); False if any does not compile."""
    ok = True
    for name in names:
        try:
            templates.env.get_template(name)
        except TemplateSyntaxError as exc:
            found.add(exc.name or name, exc.lineno, exc.message or "syntax error", fatal=True)
            ok = False
        except UnicodeDecodeError as exc:
            found.add(name, 1, f"is not UTF-8 text ({exc.reason})", fatal=True)
            ok = False
    return ok


def _twins(names: list[str], found: _Found) -> None:
    """Every email with an HTML body (`x.mjml.j2`) needs its plain-text twin (`x.txt.j2`)."""
    present = set(names)
    for name in names:
        if not name.startswith("email/") or not name.endswith(".mjml.j2"):
            continue
        if name == "email/layout.mjml.j2" or name.startswith("email/partials/"):
            continue
        twin = name.removesuffix(".mjml.j2") + ".txt.j2"
        if twin not in present:
            found.add(name, 1, f"has no plain-text twin {twin}", fatal=False)


def _render_all(settings: Settings, override: Path | None, found: _Found) -> None:
    """Render every email in every language with the sample data."""
    brand = settings.brand.model_copy(
        update={"postal_address": POSTAL_SENTINEL, "postal_address_en": POSTAL_SENTINEL}
    )
    options = dataclasses.replace(
        RenderOptions.from_settings(settings.model_copy(update={"brand": brand})),
        base_url=SAMPLE_BASE,
        site_url=SAMPLE_BASE,
        templates_dir=override,
        max_html_bytes=_UNLIMITED,
        require_way_out=False,  # reported below, part by part, with the sentinels
    )
    try:
        renderer = Renderer(options)
    except DigestError as exc:  # the greeting, or a catalog of the folder's locale/
        found.fault(exc, "", "email/greeting.txt.j2")
        return
    budget = settings.render.max_html_bytes
    for locale in DIRECTIONS:
        _check_digest(renderer, budget, locale, found)
        _check_account_emails(renderer, budget, locale, found)


def _check_digest(renderer: Renderer, budget: int, locale: str, found: _Found) -> None:
    """The sample digest compiles, shows the unsubscribe link and the postal address, and
    fits the budget; then once more with less room, to render its "and N more" part."""
    try:
        full = renderer.compile_digest(sample_segment(locale))
    except DigestError as exc:
        found.fault(exc, locale, _DIGEST_HTML)
        return
    _required_parts(full, locale, found)
    size = full.html_bytes
    try:
        fitted = _with_budget(renderer, min(budget, size - 1)).compile_digest(
            sample_segment(locale)
        )
    except TemplateFault as exc:
        found.fault(exc, locale, _DIGEST_HTML)
    except TemplateError:  # over the budget even without articles
        message = (
            f"the digest is over render.max_html_bytes ({budget}) even without articles: "
            "nothing could be sent"
        )
        found.add(_DIGEST_HTML, 1, message, fatal=True, locale=locale)
    else:
        if size > budget:
            dropped = len(fitted.dropped_ids)
            message = (
                f"the sample digest is {size} bytes of HTML, over render.max_html_bytes "
                f"({budget}): {dropped} of its {len(full.article_ids)} articles would be dropped"
            )
            found.add(_DIGEST_HTML, 1, message, fatal=False, locale=locale)


def _with_budget(renderer: Renderer, budget: int) -> Renderer:
    """`renderer` with another size budget. A shallow copy shares the loaded templates:
    building a Renderer compiles every template again (most of a check's time), and the
    budget is read from the options at each compile."""
    tighter = copy.copy(renderer)
    tighter.options = dataclasses.replace(renderer.options, max_html_bytes=budget)
    return tighter


def _required_parts(compiled: CompiledMessage, locale: str, found: _Found) -> None:
    """Refuse a digest whose HTML or text lacks the unsubscribe link or postal address."""
    recipient = sample_recipient(locale, unsubscribe_token=UNSUBSCRIBE_SENTINEL)
    message = compiled.personalise(recipient)
    link = f"{SAMPLE_BASE}/u/{UNSUBSCRIBE_SENTINEL}"
    href = re.compile(rf"""href\s*=\s*["']?{re.escape(link)}["'\s>]""")
    parts = ((_DIGEST_HTML, "HTML", message.html), (_DIGEST_TEXT, "text", message.text))
    for name, part, body in parts:
        has_link = href.search(body) if part == "HTML" else link in body
        if not has_link:
            found.add(name, 1, _missing(part, "the unsubscribe link", "unsubscribe_url"),
                      fatal=True, locale=locale)  # fmt: skip
        if POSTAL_SENTINEL not in body:
            found.add(name, 1, _missing(part, "the postal address", "brand.postal_address"),
                      fatal=True, locale=locale)  # fmt: skip


def _missing(part: str, what: str, variable: str) -> str:
    return (
        f"refused: the digest's {part} (with the layout and partials it uses) does not show "
        f"{what} ({{{{ {variable} }}}}), which the law and Gmail's and Yahoo's rules require"
    )


def _check_account_emails(renderer: Renderer, budget: int, locale: str, found: _Found) -> None:
    """The confirmation and welcome emails compile, and fit the budget."""
    list_name = SAMPLE_LIST[locale]
    emails: dict[str, Callable[[], CompiledMessage]] = {
        "confirmation": lambda: renderer.compile_confirmation(
            list_name=list_name, locale=locale, day=SAMPLE_DAY
        ),
        "welcome": lambda: renderer.compile_welcome(
            list_name=list_name, locale=locale, day=SAMPLE_DAY, topics=SAMPLE_TOPICS
        ),
    }
    for kind, compile_email in emails.items():
        name = f"email/{kind}.mjml.j2"
        try:
            compiled = compile_email()
        except DigestError as exc:
            found.fault(exc, locale, name)
            continue
        if compiled.html_bytes > budget:
            message = (
                f"{compiled.html_bytes} bytes of HTML, over render.max_html_bytes ({budget}): "
                "Gmail clips it"
            )
            found.add(name, 1, message, fatal=False, locale=locale)
