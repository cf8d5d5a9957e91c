"""Where templates are read from: the publisher's folder (`[render] templates_dir`) first,
then the built-in templates, file by file, so a publisher copies in only what they change.

The email renderer and the web pages both load through `template_loader`; gettext catalogs
come from the publisher's `locale/` when their folder has one, else from the built-ins.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader

from digest.bundled import templates_dir
from digest.config import Settings

__all__ = ["locale_dir", "override_dir", "template_folders", "template_loader"]

Source = Settings | Path | None


def override_dir(source: Source) -> Path | None:
    """The publisher's templates folder: `render.templates_dir` of settings, a path as given,
    or None (built-ins only)."""
    if isinstance(source, Settings):
        configured = source.render.templates_dir
        return Path(configured).expanduser() if configured else None
    return source


def template_folders(source: Source) -> tuple[Path, ...]:
    """The folders searched for a template, first match wins (absolute, without repeats)."""
    builtin = templates_dir().resolve()
    override = override_dir(source)
    if override is None or override.resolve() == builtin:
        return (builtin,)
    return (override.resolve(), builtin)


def template_loader(source: Source) -> BaseLoader:
    """A file in the publisher's folder replaces the built-in file of the same name
    (`email/partials/footer.txt.j2`, `web/base.html.j2`, ...); the rest are the built-ins."""
    return ChoiceLoader([FileSystemLoader(folder) for folder in template_folders(source)])


def locale_dir(source: Source) -> Path:
    """The compiled catalogs: the publisher's `locale/` if their folder has one (their own
    wording for every message), else the built-in ones."""
    folders = template_folders(source)
    own = folders[0] / "locale"
    return own if len(folders) > 1 and own.is_dir() else folders[-1] / "locale"
