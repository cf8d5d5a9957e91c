"""Where the files the engine reads at run time are: the email and web templates with their
compiled catalogs, and the Alembic migrations.

The top-level `templates/` and `migrations/` folders of the source tree are the source of
truth. Building a wheel copies them into this package (`digest/bundled/templates`,
`digest/bundled/migrations`: pyproject.toml's `force-include`), so an installed engine
finds them with `importlib.resources` wherever it runs from. A source checkout (an
editable install, the tests) has no copies here and reads the top-level folders.
Both are real folders on disk: Jinja2's loader and Alembic read files, so the package
must be installed unzipped (as pip does).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["CHECKOUT", "bundled_dir", "migrations_dir", "templates_dir"]

CHECKOUT = Path(__file__).resolve().parents[2]  # the source tree, when running from one


def bundled_dir(name: str) -> Path:
    """The folder `name` as installed in this package, else the source tree's."""
    packaged = Path(str(files(__name__).joinpath(name)))
    if packaged.is_dir():
        return packaged
    return CHECKOUT / name


def templates_dir() -> Path:
    """The built-in templates, with `locale/` (the compiled gettext catalogs) inside."""
    return bundled_dir("templates")


def migrations_dir() -> Path:
    """Alembic's script folder (env.py, versions/)."""
    return bundled_dir("migrations")
