"""The packages keep their layers: imports point down, no package-level cycle, and the
audience package (subscribers/) leans on errors, clock, text and db only.

Every `import` and `from ... import` is read with `ast` (module-level, function-level and
TYPE_CHECKING alike): a type import ties two packages together as much as a call does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import ROOT

# Lowest first; a package may import itself and anything before it. `digest` is the package
# root (digest/__init__.py); text imports nothing of the project, and config checks subject
# templates with it; `bundled` finds the templates and migrations, installed or in the
# source tree; `doctor` checks an installation, so it may look at every layer below the web
# app and the CLI; `samples` is the demo's data; `subscribers` is the audience package,
# which leans on errors, clock, text and db; `service` is how long-running commands log and
# answer liveness probes (the inbound drain's child logs too); `__main__` is `python -m digest`.
LAYERS = (
    "digest",
    "bundled",
    "errors",
    "clock",
    "text",
    "settings",
    "service",
    "config",
    "db",
    "subscribers",
    "tracking",
    "catalog",
    "ingest",
    "editions",
    "selection",
    "render",
    "preview",
    "send",
    "inbound",
    "schedule",
    "doctor",
    "samples",
    "demo",
    "web",
    "cli",
    "__main__",
)
RANK = {name: rank for rank, name in enumerate(LAYERS)}
SUBSCRIBERS_MAY_IMPORT = {"digest.errors", "digest.clock", "digest.text", "digest.db"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, and where it was written."""

    path: Path
    line: int
    module: str  # dotted, absolute: the module imported from

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} -> {self.module}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path)
    # What a relative import is relative to: the package itself for __init__.py.
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            if stem == "digest":  # `from digest import errors` imports the module digest.errors
                for alias in node.names:
                    yield Import(path, node.lineno, f"{stem}.{alias.name}")
            else:
                yield Import(path, node.lineno, stem)


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _unit(module: str) -> str | None:
    """The package a module belongs to (a digest subpackage or loose module, or
    `subscribers`), None for modules outside the project."""
    parts = module.split(".")
    if parts[0] == "subscribers":
        return "subscribers"
    if parts[0] != "digest":
        return None
    if len(parts) == 1 or parts[1] in {"__version__", "*"}:
        return "digest"
    return parts[1]


def _project_imports() -> list[tuple[str, Import]]:
    """(importing unit, import) for every import of a project module from digest/ and
    subscribers/."""
    found: list[tuple[str, Import]] = []
    for path in [*_sources("digest"), *_sources("subscribers")]:
        unit = _unit(_module_name(path))
        assert unit is not None
        for target in _imports(path):
            if _unit(target.module) is not None:
                found.append((unit, target))
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_every_package_has_a_layer() -> None:
    units = {_unit(_module_name(path)) for path in _sources("digest")}
    unknown = sorted(str(unit) for unit in units - set(RANK))
    assert not unknown, f"packages missing from LAYERS in tests/test_layers.py: {unknown}"


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{target}  ({unit} may not import {target_unit})"
        for unit, target in _project_imports()
        if (target_unit := _unit(target.module)) is not None
        and RANK.get(target_unit, -1) > RANK.get(unit, -1)
    ]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_no_package_level_import_cycle() -> None:
    edges: dict[str, set[str]] = {}
    witnesses: dict[tuple[str, str], Import] = {}
    for unit, target in _project_imports():
        target_unit = _unit(target.module)
        if target_unit is None or target_unit == unit:
            continue
        edges.setdefault(unit, set()).add(target_unit)
        witnesses.setdefault((unit, target_unit), target)
    cycles = _cycles(edges)
    described = [
        " <-> ".join(group)
        + "".join(f"\n    {witnesses[(a, b)]}" for a in group for b in group if (a, b) in witnesses)
        for group in cycles
    ]
    assert not cycles, "package-level import cycles:\n" + "\n".join(described)


def test_subscribers_lean_on_errors_clock_and_db_only() -> None:
    wrong = [
        str(target)
        for unit, target in _project_imports()
        if unit == "subscribers"
        and _unit(target.module) != "subscribers"
        and not any(
            target.module == allowed or target.module.startswith(allowed + ".")
            for allowed in SUBSCRIBERS_MAY_IMPORT
        )
    ]
    assert not wrong, "subscribers/ imports beyond digest.errors/clock/db:\n" + "\n".join(wrong)
