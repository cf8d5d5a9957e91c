"""Email templates: a Jinja2 environment per language, MJML compilation, template errors.

Templates are read from the publisher's folder first, then the built-ins (`loaders.py`);
an error names the template as `email/x.mjml.j2:12`, whichever folder it came from.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
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
from digest.render.loaders import template_folders, template_loader
from digest.render.mjml_errors import Problem, find_problem
from digest.text.bidi import bidi, bidi_in_ltr, starts_rtl

# No web fonts: Gmail, Outlook and Yahoo ignore them, and a font CDN would see every open.
# An explicit empty mapping also stops MJML from injecting its default Google fonts.
FONTS: dict[str, str] = {}
_POSITION = re.compile(r"at position (\d+):\d+")
_GHOST = re.compile(r"<!--\[if mso \| IE\]>.*?<!\[endif\]-->", re.DOTALL)


class TemplateFault(TemplateError):
    """A TemplateError that also knows the template (`email/x.mjml.j2`) and line at fault,
    when they are known: `digest templates check` reports them."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


class MjmlRejected(Exception):
    """MRML refused the MJML a template produced (the caller decides whom to blame)."""

    def __init__(self, template: str, source: str, reason: str) -> None:
        super().__init__(reason)
        self.template = template
        self.source = source
        self.reason = reason

    def as_template_error(self, directory: Path) -> TemplateFault:
        """The error naming the template line at fault (`directory`: the first folder
        searched, i.e. `Templates.directory`)."""
        folders = template_folders(directory)
        problem = find_problem(self.source) or _mrml_position(self.source, self.reason)
        where = f"{self.template} (rendered MJML)"
        if problem is not None:
            hits = _locate(folders, problem.tag) or _locate(folders, problem.excerpt)
            where = " or ".join(f"{name}:{line}" for name, line in hits)
            where = where or f"{self.template} (rendered MJML) line {problem.line}"
            file, line = hits[0] if hits else (self.template, 0)
            return TemplateFault(
                f"{where}: MJML does not compile: {problem.reason} in `{problem.excerpt}` "
                f"(MRML said: {self.reason})",
                file,
                line,
            )
        return TemplateFault(f"{where}: MJML does not compile: {self.reason}", self.template)


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
    """The templates of one language; Jinja2 and MJML errors become TemplateError.

    `override`: the publisher's folder, whose files replace the built-ins (None: built-ins).
    """

    def __init__(self, override: Path | None, language: Language) -> None:
        self.folders = template_folders(override)
        self.directory = self.folders[0]
        self.language = language
        env = Environment(
            loader=template_loader(override),
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
        module: TemplateModule = self._guard(name, lambda: self._module(name, context))
        exported = {k: str(v) for k, v in vars(module).items() if not k.startswith("_")}
        return RenderedText(name, str(module).strip() + "\n", exported)

    def _module(self, name: str, context: Mapping[str, Any]) -> TemplateModule:
        template = self.env.get_template(name)
        try:
            return template.make_module(dict(context))
        except Exception:
            # Unlike render(), make_module leaves the traceback at lines of the generated
            # Python: rewritten, an error names the line of the template.
            self.env.handle_exception()
            raise  # not reached: handle_exception raises

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
            folders = " or ".join(str(folder) for folder in self.folders)
            raise TemplateFault(f"template {exc.name} not found in {folders}", name) from None
        except TemplateSyntaxError as exc:
            file, line = exc.name or name, exc.lineno
            raise TemplateFault(f"template {file}:{line}: {exc.message}", file, line) from None
        except JinjaError as exc:
            file, line = _frame_location(exc, self.folders) or (name, 0)
            where = f"{file}:{line}" if line else file
            raise TemplateFault(f"template {where}: {exc}", file, line) from None


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


def _frame_location(exc: BaseException, folders: Sequence[Path]) -> tuple[str, int] | None:
    """(`email/digest.mjml.j2`, 12): the innermost template frame of a render-time error."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return _template_name(Path(frame.filename), folders), frame.lineno or 0
    return None


def _template_name(path: Path, folders: Sequence[Path]) -> str:
    """`email/x.mjml.j2` for a file of one of `folders` (else the path as it is)."""
    for folder in folders:
        if path.is_relative_to(folder):
            return path.relative_to(folder).as_posix()
    return str(path)


def _locate(folders: Sequence[Path], needle: str) -> list[tuple[str, int]]:
    """(template, line) of the MJML template lines holding `needle`, when at most three do;
    a template in an earlier folder hides the one of the same name in later folders."""
    needle = needle.strip()
    if not needle or "@@" in needle:
        return []
    files: dict[str, Path] = {}
    for folder in reversed(folders):
        files |= {path.relative_to(folder).as_posix(): path for path in folder.rglob("*.mjml.j2")}
    hits = [
        (name, number)
        for name, path in sorted(files.items())
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    ]
    return hits if len(hits) <= 3 else []
