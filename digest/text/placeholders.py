"""Safe `{name}` substitution for user-written templates (subjects): names only, no attributes."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

# `{name}` is a placeholder, `{{` and `}}` are literal braces; nothing else is special, so
# `{top_title.__class__}` or `{0[x]}` (str.format's attribute/index access) cannot be written.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


def placeholder_problems(template: str, allowed: Collection[str]) -> list[str]:
    """What is wrong with `template`: unknown names and stray braces (empty when fine)."""
    problems: list[str] = []
    for match in _TOKEN.finditer(template):
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            continue
        if name is None:
            problems.append(f"stray {token!r} at position {match.start()} (write {token * 2})")
        elif name not in allowed:
            problems.append(
                f"unknown placeholder {{{name}}} (known: "
                + ", ".join("{" + a + "}" for a in sorted(allowed))
                + ")"
            )
    return problems


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with every `{name}` replaced by `values[name]`; unknown names raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        if name is None:
            return token
        return values[name]

    return _TOKEN.sub(replace, template)
