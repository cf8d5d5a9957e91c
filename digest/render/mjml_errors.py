"""Find where an MJML document goes wrong: MRML's parse errors carry no position."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG_START = re.compile(r"<(/?)([A-Za-z][\w:.-]*)")
_ATTRS = r"(?:\s+[^\s=/>\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'))?)*"
_WELL_FORMED = re.compile(rf"<(/?)([A-Za-z][\w:.-]*){_ATTRS}\s*(/?)>")
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str
    excerpt: str  # the line of the source
    tag: str = ""  # the tag at fault, as written (to find it in the templates)


def find_problem(source: str) -> Problem | None:
    """The first malformed tag, unclosed element or forbidden character of `source`."""
    bad = _BAD_CHAR.search(source)
    if bad:
        return _problem(source, bad.start(), f"control character U+{ord(bad.group()):04X}")
    # Blank out comments (Outlook conditionals) keeping offsets, so lines still count right.
    text = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), source)
    stack: list[tuple[str, int]] = []
    for start in _TAG_START.finditer(text):
        tag = _WELL_FORMED.match(text, start.start())
        if tag is None:
            return _problem(source, start.start(), "malformed tag (unquoted or broken attribute?)")
        closing, name, self_closing = tag.group(1), tag.group(2).lower(), tag.group(3)
        if closing:
            names = [n for n, _ in stack]
            if name in names:
                index = len(names) - 1 - names[::-1].index(name)
                if index != len(stack) - 1:
                    unclosed, offset = stack[index + 1]
                    return _problem(source, offset, f"<{unclosed}> is never closed")
                del stack[index:]
        elif not self_closing and name not in _VOID:
            stack.append((name, start.start()))
    if stack:
        name, offset = stack[-1]
        return _problem(source, offset, f"<{name}> is never closed")
    return None


def _problem(source: str, offset: int, reason: str) -> Problem:
    line = source.count("\n", 0, offset) + 1
    excerpt = source.splitlines()[line - 1].strip() if source else ""
    tag = re.match(r"<[^<>\n]*>?", source[offset:])
    return Problem(line, reason, excerpt[:160], tag.group(0)[:160] if tag else "")
