"""Big RSS/Atom documents parsed by feedparser in worker processes, whole items per chunk.

feedparser is pure Python (~2,000 items/s on one core): most of the time of ingesting a big
feed. A big document is cut, by a real XML tokenizer (expat) reading it, into chunks of whole
items, each a valid feed document of its own: the bytes before the first item (XML
declaration, root and channel/feed elements with their namespaces and channel fields), some
items as written, then the bytes after the last item (the end tags, and anything else the
channel has after its items). Chunks go to a process pool as soon as the tokenizer has found
their items, and come back in order, so the caller stores the first chunks while the workers
parse the next ones.

Anything unusual keeps the single parse of the whole document (`parse_document`), the only
path for small documents: a document expat cannot read (the single parse then gives today's
error), a DOCTYPE, items that are not all siblings at the usual place (RSS 2.0
`rss/channel/item`, RSS 1.0 `rdf:RDF/item`, Atom `feed/entry`), anything but whitespace
between items, an `item`/`entry` element anywhere else, an empty-element item, UTF-16/32.
A chunk whose parse disagrees (an error, another item count, another encoding than the one
declared, another title) makes the parts raise `SplitFailed`, so the caller parses the whole
document once instead: the split changes the speed, never what is read.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Generator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from xml.parsers import expat

from digest.ingest.documents import (
    ParsedFeed,
    XmlPart,
    is_json,
    parse_document,
    parse_xml_part,
    xml_content_type,
)

# Documents smaller than this are parsed at once: starting workers and the tokenizer pass
# cost more than they save below ~500 items of a usual feed.
PARALLEL_MIN_BYTES = 512 * 1024
# Chunk size: small enough that storing a chunk overlaps with parsing the next ones and the
# last chunk (stored after all parsing) is short; big enough that the header parsed again in
# every chunk and the hand-over cost little.
CHUNK_BYTES = 192 * 1024
MAX_CHUNKS = 256
SCAN_STEP = 64 * 1024  # bytes read by the tokenizer between two looks for complete chunks
MAX_WORKERS = 8

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RSS1 = ("http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/")
_ATOM = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")
_ITEM_NAMES = frozenset({"item", "entry"})
_WHITESPACE = b" \t\r\n"
_TAG_ENDS = (b">", b" ", b"\t", b"\r", b"\n")


class SplitFailed(Exception):
    """A chunk of a split document did not parse as it would in the whole document: nothing
    read from the chunks may be kept; parse the whole document with `parse_document`."""


@dataclass(frozen=True)
class Layout:
    """Where the items of a document are: `spans` (start, end) byte offsets, in order."""

    header: bytes  # everything before the first item
    footer: bytes  # everything after the last item
    spans: list[tuple[int, int]]


class _Unsplittable(Exception):
    pass


class _Scanner:
    """One expat pass recording the byte spans of a feed's items (see the module doc)."""

    def __init__(self, content: bytes) -> None:
        self.content = content
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
        except _Unsplittable:
            return None

    def feed(self, data: bytes, *, final: bool = False) -> None:
        """Read the next bytes of `content`; _Unsplittable as soon as the answer is no."""
        try:
            self.parser.Parse(data, final)
        except (expat.ExpatError, ValueError, UnicodeError, LookupError) as exc:
            raise _Unsplittable(str(exc)) from None

    def layout(self) -> Layout:
        """Where the items are, once the whole document was read."""
        if not self.spans or self.depth != 0:
            raise _Unsplittable("no items")
        return Layout(
            header=self.content[: self.spans[0][0]],
            footer=self.content[self.spans[-1][1] :],
            spans=self.spans,
        )

    def closing_tags(self) -> bytes:
        """The end tags of the elements around the items: what the footer should be."""
        return b"".join(f"</{_names(name)[2]}>".encode() for name, _at in reversed(self.path))

    def _doctype(self, *_: Any) -> None:
        raise _Unsplittable("a DOCTYPE (entities, Netscape RSS 0.91): read it whole")

    # The handlers run for every element of the document: the common case is kept cheap.
    def _start(self, name: str, _attributes: Any) -> None:
        self.depth += 1
        if "item" in name or "entry" in name or self.depth == 1:
            self._start_slowly(name)
        if self.depth < self.item_depth:
            self.path.append((name, self.parser.CurrentByteIndex))

    def _start_slowly(self, name: str) -> None:
        uri, local, qname = _names(name)
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
            raise _Unsplittable(f"unknown root element {local!r}")

    def _item_start(self, uri: str, local: str, qname: str, at: int) -> None:
        parent_name, parent_at = self.path[-1] if self.path else ("", -1)
        if (
            self.depth != self.item_depth
            or (uri, local) not in self.item_names
            or _names(parent_name)[:2] != self.parent
            or self.open_at >= 0
            or not self.content.startswith(b"<" + qname.encode(), at)
        ):
            # An item elsewhere, or another element among the items: feedparser would
            # see something a chunk cannot show the same way.
            raise _Unsplittable(f"unexpected <{qname}>")
        if self.parent_at < 0:
            self.parent_at = parent_at
        elif parent_at != self.parent_at:
            raise _Unsplittable("items in two different parents")
        if self.spans and self.content[self.spans[-1][1] : at].strip(_WHITESPACE):
            raise _Unsplittable("something other than whitespace between two items")
        self.open_at = at

    def _end(self, name: str) -> None:
        if self.depth == self.item_depth and self.open_at >= 0:
            self._item_end(name)
        elif self.depth < self.item_depth:
            self.path.pop()
        self.depth -= 1

    def _item_end(self, name: str) -> None:
        qname = _names(name)[2]
        at = self.parser.CurrentByteIndex
        tag = b"</" + qname.encode()
        after = self.content[at + len(tag) : at + len(tag) + 1]
        # An empty-element tag (<item/>) reports its end after itself: read it whole.
        if not self.content.startswith(tag, at) or after not in _TAG_ENDS:
            raise _Unsplittable(f"<{qname}> does not end with an end tag")
        self.spans.append((self.open_at, self.content.index(b">", at) + 1))
        self.open_at = -1


def _names(name: str) -> tuple[str, str, str]:
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
    if not _ascii_compatible(content):
        return None
    return _Scanner(content).scan()


def _ascii_compatible(content: bytes) -> bool:
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


def default_workers() -> int:
    """The CPUs this process may use (0 or 1: no pool), at most `MAX_WORKERS`."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return min(usable, MAX_WORKERS)


class ParseWorkers:
    """A process pool for parsing big documents, started on first use and shut down on exit.

    `count` workers (default: one per usable CPU); fewer than two means no pool, and so does
    a process with other threads (see `_fork_context`). A pool that cannot start or breaks
    (a worker killed) is not used again: documents are then parsed whole.
    """

    def __init__(self, count: int | None = None) -> None:
        self.count = default_workers() if count is None else count
        self._pool: ProcessPoolExecutor | None = None
        self._usable = self.count >= 2

    def __enter__(self) -> ParseWorkers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def usable(self) -> bool:
        return self._usable

    def executor(self) -> Executor | None:
        if not self._usable:
            return None
        if self._pool is None:
            context = _fork_context()
            if context is None:
                return None  # perhaps later, once other threads have ended
            try:
                self._pool = ProcessPoolExecutor(
                    self.count, mp_context=context, initializer=_quiet_worker
                )
            except (OSError, ValueError, NotImplementedError, ImportError):
                self._usable = False  # e.g. no /dev/shm for its locks
                return None
        return self._pool

    def broken(self) -> None:
        """Stop using the pool (it failed): documents are parsed whole from now on."""
        self._usable = False
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _fork_context() -> multiprocessing.context.BaseContext | None:
    """fork, where it is safe and cheap: on Linux, and while this thread is the only one
    (a lock another thread holds at the fork, e.g. on stdout, would stay held in the child).

    Not spawn nor forkserver: their workers import the main module again, which for the
    `digest` command is the whole CLI (~2 s of CPU each): more than they would save. So a
    process with other threads (a progress bar, a scheduler) parses in one process.
    """
    if sys.platform != "linux" or threading.active_count() != 1:
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def _quiet_worker() -> None:
    # Ctrl-C is for the ingest process, which stops the pool; workers would print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the worker inherited stays out of its garbage collections: they would walk (and
    # so copy, page by page) the whole heap of the parent for nothing.
    gc.freeze()


def parse_parts(
    content: bytes,
    *,
    content_type: str | None,
    location: str,
    now: datetime,
    workers: ParseWorkers | None,
    min_bytes: int | None = None,
    chunk_bytes: int | None = None,
) -> Generator[ParsedFeed, None, None]:
    """The document's items as one or more `ParsedFeed` parts, in order (together: what
    `parse_document` gives, the title in every part).

    Small, JSON or unsplittable documents, or no `workers`: parsed here and now, FeedError
    raised by this call. A big RSS/Atom document: chunks submitted to the workers now, parts
    yielded as they are parsed; iterating raises `SplitFailed` if a chunk went wrong (parse
    the document whole then; it raises the FeedError, if any). Close the generator (or use
    it up) to cancel the chunks not yet parsed. `min_bytes`, `chunk_bytes`: see
    PARALLEL_MIN_BYTES and CHUNK_BYTES.
    """
    min_bytes = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    pool = None
    declared = ""
    if (
        workers is not None
        and workers.usable
        and len(content) >= min_bytes
        and not is_json(content, content_type)
        and content.strip()
        and _ascii_compatible(content)
    ):
        declared = xml_content_type(content, content_type)
        if not _first_guess_fails(content, declared):
            pool = workers.executor()  # started for the first document that needs it
    if pool is not None and workers is not None:
        split = _Split(content, pool, declared, location, now)
        try:
            return split.run(chunk_bytes, workers)
        except _Unsplittable:
            split.cancel()
        except (BrokenProcessPool, RuntimeError, OSError):  # the pool broke, or cannot fork
            split.cancel()
            workers.broken()
    return one_part(parse_document(content, content_type=content_type, location=location, now=now))


class _Split:
    """Chunks submitted while the tokenizer reads the document: the workers start on the
    first items while the last ones are still being found. Until the end of the document
    is read the chunks end with the end tags of the elements around the items; if something
    else follows the items, every chunk is submitted again with it (or, for a document that
    turns out unsplittable, the chunks are cancelled)."""

    def __init__(
        self, content: bytes, pool: Executor, declared: str, location: str, now: datetime
    ) -> None:
        self.content = content
        self.pool = pool
        self.declared = declared
        self.location = location
        self.now = now
        self.futures: list[Future[XmlPart]] = []
        self.ranges: list[tuple[int, int]] = []

    def run(self, chunk_bytes: int, workers: ParseWorkers) -> Generator[ParsedFeed, None, None]:
        content = self.content
        # At least two chunks per worker: none idle while another parses a long last chunk.
        target = max(1, min(chunk_bytes, len(content) // (2 * workers.count)))
        scanner = _Scanner(content)
        header = footer = b""
        for offset in range(0, len(content), SCAN_STEP):
            scanner.feed(content[offset : offset + SCAN_STEP])
            if scanner.spans and not header:
                header, footer = content[: scanner.spans[0][0]], scanner.closing_tags()
            self._submit_ready(scanner.spans, target, header, footer, keep_last=True)
        scanner.feed(b"", final=True)
        layout = scanner.layout()
        if b"".join(layout.footer.split()) != footer:  # not only end tags after the items
            self.cancel()
            self.futures, self.ranges = [], []
            for first, stop in plan_chunks(layout, chunk_bytes, workers.count):
                self._submit(layout.spans, first, stop, header, layout.footer)
        else:
            self._submit_ready(layout.spans, target, header, footer, keep_last=False)
        return _collect(self.futures, self.ranges, workers)

    def _submit_ready(
        self,
        spans: Sequence[tuple[int, int]],
        target: int,
        header: bytes,
        footer: bytes,
        *,
        keep_last: bool,
    ) -> None:
        """Submit the items found and not yet submitted, in chunks of about `target` bytes
        (`keep_last`: the items that do not fill a chunk wait for more)."""
        first = self.ranges[-1][1] if self.ranges else 0
        for stop in range(first + 1, len(spans) + 1):
            if spans[stop - 1][1] - spans[first][0] >= target:
                self._submit(spans, first, stop, header, footer)
                first = stop
        if not keep_last and first < len(spans):
            self._submit(spans, first, len(spans), header, footer)

    def _submit(
        self, spans: Sequence[tuple[int, int]], first: int, stop: int, header: bytes, footer: bytes
    ) -> None:
        document = header + self.content[spans[first][0] : spans[stop - 1][1]] + footer
        self.futures.append(
            self.pool.submit(
                parse_xml_part,
                document,
                declared=self.declared,
                location=self.location,
                now=self.now,
                first_number=first + 1,
            )
        )
        self.ranges.append((first, stop))

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()


def one_part(parsed: ParsedFeed) -> Generator[ParsedFeed, None, None]:
    """A document parsed whole, as the one part of `parse_parts`."""
    yield parsed


def _collect(
    futures: Sequence[Future[XmlPart]], ranges: Sequence[tuple[int, int]], workers: ParseWorkers
) -> Generator[ParsedFeed, None, None]:
    try:
        first: XmlPart | None = None
        for future, (start, stop) in zip(futures, ranges, strict=True):
            try:
                part = future.result()
            except BrokenProcessPool as exc:
                workers.broken()
                raise SplitFailed(f"a parsing worker stopped: {exc}") from None
            except Exception as exc:  # a FeedError or a feedparser bug: the whole parse tells
                raise SplitFailed(f"items {start + 1}-{stop}: {exc}") from None
            first = first or part
            if part.entries != stop - start:
                raise SplitFailed(f"items {start + 1}-{stop}: feedparser found {part.entries}")
            if part.encoding_guessed or part.encoding != first.encoding:
                raise SplitFailed(f"items {start + 1}-{stop}: read as {part.encoding}")
            if part.parsed.title != first.parsed.title:
                raise SplitFailed(f"items {start + 1}-{stop}: another feed title")
            yield part.parsed
    finally:
        for future in futures:
            future.cancel()


def _first_guess_fails(content: bytes, declared: str) -> bool:
    """A shortcut for a case whose chunks would all be refused: a text/* type without charset
    means ASCII to feedparser (RFC 3023), which non-ASCII bytes then contradict."""
    kind, _, parameters = declared.partition(";")
    return (
        kind.strip().lower().startswith("text/")
        and "charset" not in parameters.lower()
        and not content.isascii()
    )
