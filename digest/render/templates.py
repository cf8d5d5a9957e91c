"""Email templates: a Jinja2 environment per language, MJML compilation, template errors."""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2 import (
    TemplateError as JinjaError,
)
from jinja2.environment import TemplateModule
from mjml import mjml2html

from digest.errors import TemplateError
from digest.render.i18n import Language
from digest.render.mjml_errors import Problem, find_problem
from digest.text.bidi import bidi, bidi_in_ltr, starts_rtl

# No web fonts: Gmail, Outlook and Yahoo ignore them, and a font CDN would see every open.
# An explicit empty mapping also stops MJML from injecting its default Google fonts.
FONTS: dict[str, str] = {}
_POSITION = re.compile(r"at position (\d+):\d+")
_GHOST = re.compile(r"<!--\[if mso \| IE\]>.*?<!\[endif\]-->", re.DOTALL)


class MjmlRejected(Exception):
    """MRML refused the MJML a template produced (the caller decides whom to blame)."""

    def __init__(self, template: str, source: str, reason: str) -> None:
        super().__init__(reason)
        self.template = template
        self.source = source
        self.reason = reason

    def as_template_error(self, directory: Path) -> TemplateError:
        problem = find_problem(self.source) or _mrml_position(self.source, self.reason)
        where = f"{self.template} (rendered MJML)"
        if problem is not None:
            found = _locate(directory, problem.tag) or _locate(directory, problem.excerpt)
            where = found or f"{where} line {problem.line}"
            return TemplateError(
                f"{where}: MJML does not compile: {problem.reason} in `{problem.excerpt}` "
                f"(MRML said: {self.reason})"
            )
        return TemplateError(f"{where}: MJML does not compile: {self.reason}")


@dataclass(frozen=True)
class RenderedText:
    """A rendered text template and the strings it set for the HTML twin and the headers."""

    template: str
    text: str
    exported: Mapping[str, str]

    def __getitem__(self, key: str) -> str:
        try:
            return self.exported[key]
        except KeyError:
            raise TemplateError(f"template {self.template} must set `{key}`") from None


class Templates:
    """The templates of one language; Jinja2 and MJML errors become TemplateError."""

    def __init__(self, directory: Path, language: Language) -> None:
        self.directory = directory
        self.language = language
        env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("mjml.j2",), default=False),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.install_gettext_translations(  # type: ignore[attr-defined]
            _JinjaCatalog(language), newstyle=True
        )
        env.filters["bidi"] = bidi if language.rtl else bidi_in_ltr
        env.filters["rtl_line"] = starts_rtl if language.rtl else str
        env.filters["number"] = language.number
        env.globals.update(
            lang=language.locale, dir=language.direction, align=language.align, rtl=language.rtl
        )
        self.env = env

    def check(self) -> None:
        """Parse every template, so a syntax error surfaces before anything is sent."""
        for name in self.env.list_templates(extensions=["j2"]):
            self._guard(name, lambda n=name: self.env.get_template(n))

    def text(self, name: str, context: Mapping[str, Any]) -> RenderedText:
        """Render a text template, keeping the values its top-level `{% set %}` exports."""
        module: TemplateModule = self._guard(
            name, lambda: self.env.get_template(name).make_module(dict(context))
        )
        exported = {k: str(v) for k, v in vars(module).items() if not k.startswith("_")}
        return RenderedText(name, str(module).strip() + "\n", exported)

    def html(self, name: str, context: Mapping[str, Any]) -> str:
        """Render an MJML template and compile it to HTML (Outlook ghost tables get `dir`)."""
        source: str = self._guard(name, lambda: self.env.get_template(name).render(context))
        try:
            html = mjml2html(source, disable_comments=True, fonts=FONTS)
        except ValueError as exc:
            raise MjmlRejected(name, source, str(exc)) from None
        if self.language.rtl:
            html = _GHOST.sub(lambda m: m.group().replace("<table ", '<table dir="rtl" '), html)
        return html

    def _guard(self, name: str, action: Any) -> Any:
        try:
            return action()
        except TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found in {self.directory}") from None
        except TemplateSyntaxError as exc:
            where = f"{exc.name or name}:{exc.lineno}"
            raise TemplateError(f"template {where}: {exc.message}") from None
        except JinjaError as exc:
            where = _frame_location(exc, self.directory) or name
            raise TemplateError(f"template {where}: {exc}") from None


class _JinjaCatalog:
    """The catalog as Jinja's i18n extension calls it; plural counts in the language's digits."""

    def __init__(self, language: Language) -> None:
        self.gettext = language.translations.gettext
        self.ngettext = language.raw_ngettext


def _mrml_position(source: str, reason: str) -> Problem | None:
    """MRML sometimes says `at position 885:889` (byte offsets): turn that into a line."""
    found = _POSITION.search(reason)
    if found is None:
        return None
    offset = len(source.encode()[: int(found.group(1))].decode(errors="ignore"))
    line = source.count("\n", 0, offset) + 1
    return Problem(line, "MRML stops here", source.splitlines()[line - 1].strip()[:160])


def _frame_location(exc: BaseException, directory: Path) -> str | None:
    """`email/digest.mjml.j2:12`: the innermost template frame of a render-time error."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            path = Path(frame.filename)
            shown = path.relative_to(directory) if path.is_relative_to(directory) else path
            return f"{shown}:{frame.lineno}"
    return None


def _locate(directory: Path, needle: str) -> str | None:
    """`file:line` of the template lines holding `needle` (when at most three do)."""
    needle = needle.strip()
    if not needle or "@@" in needle:
        return None
    hits = [
        f"{path.relative_to(directory)}:{number}"
        for path in sorted(directory.rglob("*.mjml.j2"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    ]
    return " or ".join(hits) if 0 < len(hits) <= 3 else None
