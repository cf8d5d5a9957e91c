"""The top-level MIME boundary renamed before parsing, so that the stdlib parser reuses its
expression.

`email.feedparser` compiles one regular expression per multipart boundary it meets, and a
boundary is unique to its message: compiling it was a fifth of the time to read a bounce
(0.1 ms of 0.5). Renamed to one fixed name, the compiled expression stays in `re`'s cache
from one message to the next. A report has one boundary (the returned message's own is in
headers the reader stops after), so the top level's is the one that counts.

Exactly what the parser reads as that boundary is renamed: the `boundary` parameter of the
top-level Content-Type, and the delimiter lines up to the closing one (`--NAME`, maybe `--`,
maybe blanks, then the line's end), which the parser would take as delimiters wherever they
are. Anything unusual (an RFC 2231 parameter, a second `boundary` in the top headers,
spaces, quotes, backslashes or angle brackets in the name, lone CRs, the fixed name present)
leaves the bytes as they came: the parser then reads them as before, only slower.
"""

from __future__ import annotations

import re

__all__ = ["NAME", "renamed"]

NAME = b"=_inbound-boundary_="
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PARAM = re.compile(
    rb'(?<![\w-])boundary[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I
)
_FIELD = re.compile(rb"(?:^|\n)content-type:[ \t]*multipart/", re.I)
_NEXT_FIELD = re.compile(rb"\n[^ \t]")
# What the parser's get_boundary() returns unchanged: printable ASCII without the space, the
# quote and backslash it unquotes, and the angle brackets it strips.
_PLAIN = re.compile(rb"[!#-;=?-\[\]-~]{1,200}")
_LINE_REST = re.compile(rb"(--)?[ \t]*(?:\r?\n|\Z)")


def renamed(raw: bytes, lowered: bytes) -> bytes:
    """`raw` with its top-level boundary renamed to NAME (`lowered` is `raw.lower()`), or
    `raw` itself when there is none or anything this does not rename with certainty."""
    head = _HEAD_END.search(raw)
    if head is None or NAME in raw or raw.count(b"\r") != raw.count(b"\r\n"):
        return raw
    top = lowered[: head.start()]
    field = _FIELD.search(top)
    if field is None or len(_PARAM.findall(top)) != 1:
        return raw
    param = _PARAM.search(raw, field.end(), head.start())
    following = _NEXT_FIELD.search(raw, field.end(), head.start())
    if param is None or (following is not None and following.start() < param.start()):
        return raw  # no parameter, or one in another field than Content-Type
    name = param.group(1) if param.group(1) is not None else param.group(2)
    if _PLAIN.fullmatch(name) is None:
        return raw
    out = [raw[: param.start()], b'boundary="', NAME, b'"']
    start = param.end()
    delimiter = b"\n--" + name
    at = raw.find(delimiter, head.start())
    while at != -1:
        rest = _LINE_REST.match(raw, at + len(delimiter))
        if rest is not None:
            out += [raw[start:at], b"\n--", NAME]
            start = at + len(delimiter)
            if rest.group(1):  # the closing delimiter: the epilogue after it is text
                break
        at = raw.find(delimiter, at + len(delimiter))
    out.append(raw[start:])
    return b"".join(out)
