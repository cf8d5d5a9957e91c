"""How deep a feed document or an item's HTML is nested, checked before anything parses it.

A hostile feed nests thousands of levels: JSON then stops Python's parser with a
RecursionError, and HTML inside an item makes the sanitiser work for minutes (its time grows
with the square of the depth). Feeds nest a dozen levels, their HTML a few dozen: past
`[ingest] max_depth` a document is refused (a per-feed error) and an item's HTML skips it.
"""

from __future__ import annotations

import re
from xml.parsers import expat

# A JSON string; one left open runs to the end (so every match succeeds: linear time).
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)\b[^>]*?(/?)>")
# Void elements and those a sibling closes (<p>, <li>, ...): they never nest deeper.
_FLAT = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "p", "li", "dt", "dd", "option", "tr", "td", "th", "thead", "tbody",
    }
)  # fmt: skip


class _TooDeep(Exception):
    pass


def xml_too_deep(content: bytes, limit: int) -> bool:
    """True if elements nest deeper than `limit` (as far as expat can read the bytes).

    Read as Latin-1: every byte is a character, so the markup of any ASCII-compatible
    encoding is seen as it is without decoding errors; what expat cannot read is the
    parser's to refuse."""
    parser = expat.ParserCreate("iso-8859-1")
    depth = 0

    def start(_name: str, _attributes: object) -> None:
        nonlocal depth
        depth += 1
        if depth > limit:
            raise _TooDeep

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(content, True)
    except _TooDeep:
        return True
    except (expat.ExpatError, ValueError):
        return False
    return False


def json_too_deep(content: bytes, limit: int) -> bool:
    """True if arrays and objects nest deeper than `limit` (strings skipped)."""
    brackets = _JSON_STRING.sub(b"", content).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        # Each pass removes the innermost level (C speed, however wide the document).
        inner = _INNERMOST.sub(b"", brackets)
        if inner == brackets:
            return False  # unbalanced: not JSON, as the JSON parser will say
        brackets = inner
    return bool(brackets)


def html_too_deep(fragment: str, limit: int) -> bool:
    """True if the elements of an HTML fragment nest deeper than `limit` (an estimate from its
    tags: end tags omitted by sloppy HTML count as nesting, except for <p>, <li> and such)."""
    if fragment.count("<") <= limit:  # too few tags to be that deep: the usual case, ~free
        return False
    depth = 0
    for closing, name, empty in _HTML_TAG.findall(fragment):
        if empty or name.lower() in _FLAT:
            continue
        if closing:
            depth = max(depth - 1, 0)
        else:
            depth += 1
            if depth > limit:
                return True
    return False
