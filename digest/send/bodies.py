"""A segment's message body as 8bit MIME (RFC 6152), prepared once, filled per subscriber.

With 8BITMIME the Arabic text and HTML parts go at their UTF-8 size instead of +33% base64,
and the bytes shared by a segment's messages are joined as they are. Three things that
would otherwise be done for every message are done here once per segment:

- Lines: SMTP allows at most 998 octets a line (RFC 5321 §4.5.3.1.6), and MJML writes its
  HTML in lines of tens of KB. HTML lines are broken at a space before an attribute
  (`<td␣style="…"` → `<td⏎style="…"`): white space between attributes is any white space,
  so the page is unchanged. The text part is never re-broken. A part whose lines cannot be
  made short enough leaves the segment in base64 (`prepare` gives None).
- Dots: a line that starts with "." (a CSS rule does) is doubled once here, for the wire;
  `FilledBody.data` keeps the message itself.
- DKIM's relaxed body form (RFC 6376 §3.4.4) of the shared bytes: per message only the
  values are added, and one hash is taken over the join (dkim.canonical_body would scan
  the whole body again for white space runs).

Per message, `fill` checks each value once: a value that is empty or holds a line break
gives None (the message goes in base64); one too long for the room its lines have gives
None too; one with white space at an end or in a run is sent in 8bit but its canonical
form is left to `dkim.canonical_body` (`FilledBody.canonical` is None).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from digest.render.slots import SlotTemplate

LINE_LIMIT = 998  # octets, CRLF not counted
WRAP_AT = 800  # fixed octets on a broken HTML line: room left for the values it holds
_ATTRIBUTE = re.compile(rb"[A-Za-z][A-Za-z0-9_:.-]*=[\"']")
_WSP = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb" (?=\r\n)")
TEXT, HTML = 0, 1


def canonical_utf8(text: str) -> bytes:
    """`text` as a MIME text body before transfer encoding: UTF-8, CRLF line ends."""
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


def wrap_html(data: bytes, width: int = WRAP_AT) -> bytes | None:
    """`data` (CRLF lines) with every line longer than `width` broken at spaces that stand
    before an HTML attribute; None when a line has no such space in reach."""
    lines = data.split(b"\r\n")
    if all(len(line) <= width for line in lines):
        return data
    wrapped: list[bytes] = []
    for line in lines:
        while len(line) > width:
            cut = line.rfind(b" ", 1, width + 1)
            while cut > 0 and not _ATTRIBUTE.match(line, cut + 1):
                cut = line.rfind(b" ", 1, cut)
            if cut <= 0:
                return None
            wrapped.append(line[:cut])
            line = line[cut + 1 :]
        wrapped.append(line)
    return b"\r\n".join(wrapped)


def canonical_piece(piece: bytes) -> bytes:
    """Relaxed body canonicalisation of a piece that values will be joined to: runs of white
    space made one space, none before a line end; an end of the piece is not a line end."""
    return _TRAILING_WSP.sub(b"", _WSP.sub(b" ", piece))


@dataclass(frozen=True, slots=True)
class FilledBody:
    """One message's body: `data` as the message holds it, `wire` dot-stuffed for SMTP (the
    same object when nothing needed it), `canonical` its DKIM relaxed form (None: not known
    here, compute it from `data`)."""

    data: bytes
    wire: bytes
    canonical: bytes | None


@dataclass(frozen=True, slots=True)
class BodyParts:
    """The fixed bytes around the two text parts: the text part's MIME head, what goes
    between the two parts (its end, the HTML part's head), the closing boundary."""

    head: bytes
    between: bytes
    end: bytes


class EightBitBody:
    """A segment's 8bit body split at its slots; `fill` gives one subscriber's body."""

    __slots__ = ("_budget", "_canonical", "_groups", "_parts", "_stuffed", "_wire")

    def __init__(
        self,
        parts: list[bytes],
        groups: tuple[tuple[int, str, tuple[int, ...], tuple[int, ...]], ...],
        budget: int,
    ) -> None:
        self._parts = parts
        self._groups = groups  # (TEXT or HTML, slot name, indexes, indexes at a line start)
        self._budget = budget
        self._wire = [part.replace(b"\r\n.", b"\r\n..") for part in parts]
        self._stuffed = self._wire != parts
        self._canonical = [canonical_piece(part) for part in parts]

    @classmethod
    def prepare(
        cls, parts: BodyParts, text: SlotTemplate, html: SlotTemplate
    ) -> EightBitBody | None:
        """The body of `text` and `html` between `parts`; None when a line cannot be kept
        under 998 octets (the segment then goes in base64)."""
        nonce = secrets.token_hex(8)  # text from a feed cannot forge a marker
        marked_text = canonical_utf8(text.fill({n: f"@@{nonce}.t.{n}@@" for n in text.names}))
        marked_html = wrap_html(
            canonical_utf8(html.fill({n: f"@@{nonce}.h.{n}@@" for n in html.names}))
        )
        if marked_html is None:
            return None
        body = b"".join([parts.head, marked_text, parts.between, marked_html, parts.end])
        marker = re.compile(rb"@@" + nonce.encode("ascii") + rb"\.([th])\.([a-z_]+)@@")
        budget = LINE_LIMIT
        for line in body.split(b"\r\n"):
            found = marker.findall(line)
            fixed = len(marker.sub(b"", line))
            if fixed > LINE_LIMIT:
                return None
            if found:
                budget = min(budget, (LINE_LIMIT - fixed) // len(found))
        pieces: list[bytes] = []
        groups: dict[tuple[int, str], tuple[list[int], list[int]]] = {}
        last = 0
        for match in marker.finditer(body):
            pieces.append(body[last : match.start()])
            source = TEXT if match.group(1) == b"t" else HTML
            indexes, starts = groups.setdefault((source, match.group(2).decode()), ([], []))
            indexes.append(len(pieces))
            if pieces[-1].endswith(b"\r\n"):
                starts.append(len(pieces))
            pieces.append(b"")
            last = match.end()
        pieces.append(body[last:])
        return cls(
            pieces,
            tuple((s, n, tuple(i), tuple(t)) for (s, n), (i, t) in groups.items()),
            budget,
        )

    def fill(self, text: Mapping[str, str], html: Mapping[str, str]) -> FilledBody | None:
        """This subscriber's body, or None when a value cannot go in 8bit here (empty, with
        a line break, or longer than its lines have room for): send it in base64."""
        data = self._parts.copy()
        wire = self._wire.copy() if self._stuffed else data
        canonical: list[bytes] | None = self._canonical.copy()
        for source, name, indexes, starts in self._groups:
            value = (text if source == TEXT else html)[name].encode("utf-8")
            if not value or len(value) > self._budget or b"\r" in value or b"\n" in value:
                return None
            if canonical is not None and (
                value[0] in b" \t" or value[-1] in b" \t" or b"  " in value or b"\t" in value
            ):
                canonical = None
            for index in indexes:
                data[index] = value
                if wire is not data:
                    wire[index] = value
                if canonical is not None:
                    canonical[index] = value
            if starts and value.startswith(b"."):  # a dot at a line start: doubled on the wire
                if wire is data:
                    wire = data.copy()
                for index in starts:
                    wire[index] = b"." + value
        joined = b"".join(data)
        return FilledBody(
            joined,
            joined if wire is data else b"".join(wire),
            None if canonical is None else b"".join(canonical),
        )
