"""Names a publisher's web templates use that no page is ever given: a typo such as
`{{ brand.nme }}` or `{{ unsubscribe_ur }}` would make that page a 500 for every reader.

The web pages are rendered by the web app with each route's own context, so `digest
templates check` cannot render them with sample data as it does the emails. It reads them
instead: a name must be one that some built-in web page uses (the routes give it), a
global of the environment, or defined in the template itself; an attribute of `brand` must
be one the brand has."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from jinja2 import Environment, meta, nodes

from digest.settings.brand import BrandView

__all__ = ["unknown_page_names"]

_ALWAYS = frozenset({"brand", "publisher", "_", "gettext", "ngettext", "lang", "dir", "rtl"})
_BRAND = frozenset(field.name for field in dataclasses.fields(BrandView))


def unknown_page_names(
    env: Environment, builtins: Environment, override: Path
) -> Iterator[tuple[str, int, str]]:
    """(template, line, message) for each unknown name in the web templates of `override`
    (`env` reads the override first; `builtins` reads only the built-in templates)."""
    given = set(_ALWAYS) | set(env.globals)
    for name in builtins.list_templates(filter_func=_is_page):
        source = builtins.loader.get_source(builtins, name)[0]  # type: ignore[union-attr]
        given |= meta.find_undeclared_variables(builtins.parse(source))
    for name in env.list_templates(filter_func=_is_page):
        if not (override / name).is_file():
            continue
        tree = env.parse((override / name).read_text(encoding="utf-8"))
        # Jinja counts a name set in one branch of an `if` as undeclared where it is used:
        # anything the template assigns (set, for, macro arguments) is its own.
        own = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        for unknown in sorted(meta.find_undeclared_variables(tree) - given - own):
            line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown), 1)
            yield name, line, f"unknown variable {unknown!r}: no web page is given it"
        for node in tree.find_all(nodes.Getattr):
            target = node.node
            brand = isinstance(target, nodes.Name) and target.name == "brand"
            if brand and node.attr not in _BRAND:
                yield name, node.lineno, f"brand has no {node.attr!r}"


def _is_page(name: str) -> bool:
    return name.startswith("web/") and name.endswith(".j2")
