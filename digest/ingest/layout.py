"""Where the items of a big RSS/Atom document are: one expat pass records their byte spans.

The document is read by a real XML tokenizer (expat); the items must all be siblings at the
usual place (RSS 2.0 `rss/channel/item`, RSS 1.0 `rdf:RDF/item`, Atom `feed/entry`) with
nothing but whitespace between them. Anything else (a DOCTYPE, an item elsewhere, an
empty-element item, UTF-16/32, a document expat cannot read) makes the document
unsplittable: it is then parsed whole (see `digest.ingest.parallel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from digest.ingest.documents import MAX_DEPTH, too_deep

MAX_CHUNKS = 256

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RSS1 = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
_ATOM = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")
_ITEM_NAMES = frozenset({"item", "entry"})
_WHITESPACE = b" \t\r\n"
_TAG_ENDS = (b">", b" ", b"\t", b"\r", b"\n")


@dataclass(frozen=True)
class Layout:
    """Where the items of a document are: `spans` (start, end) byte offsets, in order."""

    header: bytes  # everything before the first item
    footer: bytes  # everything after the last item
    spans: list[tuple[int, int]]


class Unsplittable(Exception):
    """The document cannot be split safely: parse it whole."""


class Scanner:
    """One expat pass recording the byte spans of a feed's items (see the module doc)."""

    def __init__(self, content: bytes, *, max_depth: int = MAX_DEPTH) -> None:
        self.content = content
        self.max_depth = max_depth  # deeper: FeedError (the document is refused, not split)
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.namespace_prefixes = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.depth = 0
        self.item_depth = 0  # known from the root element
        self.item_names: frozenset[tuple[str, str]] = frozenset()
        self.parent: tuple[str, str] = ("", "")  # (namespace, name) of the items' parent
        self.path: list[tuple[str, int]] = []  # the open elements above the items: (name, at)
        self.parent_at = -1  # where the element holding the items starts
        self.open_at = -1  # where the item being read starts, -1 outside items
        self.spans: list[tuple[int, int]] = []

    def scan(self) -> Layout | None:
        try:
            self.feed(self.content, final=True)
            return self.layout()
        except Unsplittable:
            return None

    def feed(self, data: bytes, *, final: bool = False) -> None:
        """Read the next bytes of `content`; Unsplittable as soon as the answer is no."""
        try:
            self.parser.Parse(data, final)
        except (expat.ExpatError, ValueError, UnicodeError, LookupError) as exc:
            raise Unsplittable(str(exc)) from None

    def layout(self) -> Layout:
        """Where the items are, once the whole document was read."""
        if not self.spans or self.depth != 0:
            raise Unsplittable("no items")
        return Layout(
            header=self.content[: self.spans[0][0]],
            footer=self.content[self.spans[-1][1] :],
            spans=self.spans,
        )

    def closing_tags(self) -> bytes:
        """The end tags of the elements around the items: what the footer should be."""
        return b"".join(f"</{names(name)[2]}>".encode() for name, _at in reversed(self.path))

    def _doctype(self, *_: Any) -> None:
        raise Unsplittable("a DOCTYPE (entities, Netscape RSS 0.91): read it whole")

    # The handlers run for every element of the document: the common case is kept cheap.
    def _start(self, name: str, _attributes: Any) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise too_deep(self.max_depth)
        if "item" in name or "entry" in name or self.depth == 1:
            self._start_slowly(name)
        if self.depth < self.item_depth:
            self.path.append((name, self.parser.CurrentByteIndex))

    def _start_slowly(self, name: str) -> None:
        uri, local, qname = names(name)
        if self.depth == 1:
            self._root(uri, local)
        if local in _ITEM_NAMES:
            self._item_start(uri, local, qname, self.parser.CurrentByteIndex)

    def _root(self, uri: str, local: str) -> None:
        if (uri, local) == ("", "rss"):
            self.item_depth, self.parent = 3, ("", "channel")
            self.item_names = frozenset({("", "item")})
        elif (uri, local) == (_RDF, "RDF"):
            self.item_depth, self.parent = 2, (_RDF, "RDF")
            self.item_names = frozenset((ns, "item") for ns in _RSS1)
        elif uri in _ATOM and local == "feed":
            self.item_depth, self.parent = 2, (uri, "feed")
            self.item_names = frozenset({(uri, "entry")})
        else:
            raise Unsplittable(f"unknown root element {local!r}")

    def _item_start(self, uri: str, local: str, qname: str, at: int) -> None:
        parent_name, parent_at = self.path[-1] if self.path else ("", -1)
        if (
            self.depth != self.item_depth
            or (uri, local) not in self.item_names
            or names(parent_name)[:2] != self.parent
            or self.open_at >= 0
            or not self.content.startswith(b"<" + qname.encode(), at)
        ):
            # An item elsewhere, or another element among the items: feedparser would
            # see something a chunk cannot show the same way.
            raise Unsplittable(f"unexpected <{qname}>")
        if self.parent_at < 0:
            self.parent_at = parent_at
        elif parent_at != self.parent_at:
            raise Unsplittable("items in two different parents")
        if self.spans and self.content[self.spans[-1][1] : at].strip(_WHITESPACE):
            raise Unsplittable("something other than whitespace between two items")
        self.open_at = at

    def _end(self, name: str) -> None:
        if self.depth == self.item_depth and self.open_at >= 0:
            self._item_end(name)
        elif self.depth < self.item_depth:
            self.path.pop()
        self.depth -= 1

    def _item_end(self, name: str) -> None:
        qname = names(name)[2]
        at = self.parser.CurrentByteIndex
        tag = b"</" + qname.encode()
        after = self.content[at + len(tag) : at + len(tag) + 1]
        # An empty-element tag (<item/>) reports its end after itself: read it whole.
        if not self.content.startswith(tag, at) or after not in _TAG_ENDS:
            raise Unsplittable(f"<{qname}> does not end with an end tag")
        self.spans.append((self.open_at, self.content.index(b">", at) + 1))
        self.open_at = -1


def names(name: str) -> tuple[str, str, str]:
    """(namespace URI, local name, name as written) of an expat name "uri local [prefix]"."""
    parts = name.split(" ")
    if len(parts) == 1:
        return "", name, name
    if len(parts) == 2:
        return parts[0], parts[1], parts[1]
    return parts[0], parts[1], f"{parts[2]}:{parts[1]}"


def find_items(content: bytes) -> Layout | None:
    """The items of an RSS/Atom document and what surrounds them; None when the document
    cannot be split safely (the caller then parses it whole)."""
    if not ascii_compatible(content):
        return None
    return Scanner(content).scan()


def ascii_compatible(content: bytes) -> bool:
    # Not UTF-16/32 nor EBCDIC: the cut points are "<" bytes.
    return not content.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"\x4c\x6f\xa7\x94"))


def plan_chunks(layout: Layout, chunk_bytes: int, workers: int) -> list[tuple[int, int]]:
    """Item index ranges [first, stop) of about `chunk_bytes` each, at least two per worker."""
    spans = layout.spans
    total = spans[-1][1] - spans[0][0]
    count = max(2 * workers, -(-total // max(chunk_bytes, 1)))
    count = min(count, MAX_CHUNKS, len(spans))
    target = total / count
    ranges: list[tuple[int, int]] = []
    first = 0
    origin = spans[0][0]
    for index, (_start, end) in enumerate(spans):
        if end - origin >= target * (len(ranges) + 1) and index + 1 < len(spans):
            ranges.append((first, index + 1))
            first = index + 1
    ranges.append((first, len(spans)))
    return [r for r in ranges if r[0] < r[1]]
