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
error), or one whose items are not where `digest.ingest.layout` expects them.
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

from digest.ingest.documents import (
    MAX_DEPTH,
    FeedError,
    ParsedFeed,
    XmlPart,
    is_json,
    parse_document,
    parse_xml_part,
)
from digest.ingest.encodings import xml_content_type
from digest.ingest.layout import Scanner, Unsplittable, ascii_compatible, plan_chunks

# Documents smaller than this are parsed at once: starting workers and the tokenizer pass
# cost more than they save below ~500 items of a usual feed.
PARALLEL_MIN_BYTES = 512 * 1024
# Chunk size: small enough that storing a chunk overlaps with parsing the next ones and the
# last chunk (stored after all parsing) is short; big enough that the header parsed again in
# every chunk and the hand-over cost little.
CHUNK_BYTES = 192 * 1024
SCAN_STEP = 64 * 1024  # bytes read by the tokenizer between two looks for complete chunks
MAX_WORKERS = 8


class SplitFailed(Exception):
    """A chunk of a split document did not parse as it would in the whole document: nothing
    read from the chunks may be kept; parse the whole document with `parse_document`."""


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


@dataclass(frozen=True)
class Chunking:
    """When a document is split (`min_bytes` and up) and into chunks of about what size."""

    min_bytes: int
    chunk_bytes: int

    @classmethod
    def default(cls) -> Chunking:
        # Read at call time: tests and benchmarks set the module's constants.
        return cls(min_bytes=PARALLEL_MIN_BYTES, chunk_bytes=CHUNK_BYTES)


def parse_parts(
    content: bytes,
    *,
    content_type: str | None,
    location: str,
    now: datetime,
    workers: ParseWorkers | None,
    chunking: Chunking | None = None,
    max_depth: int = MAX_DEPTH,
) -> Generator[ParsedFeed, None, None]:
    """The document's items as one or more `ParsedFeed` parts, in order (together: what
    `parse_document` gives, the title in every part).

    Small, JSON or unsplittable documents, or no `workers`: parsed here and now, FeedError
    raised by this call. A big RSS/Atom document: chunks submitted to the workers now, parts
    yielded as they are parsed; iterating raises `SplitFailed` if a chunk went wrong (parse
    the document whole then; it raises the FeedError, if any). Close the generator (or use
    it up) to cancel the chunks not yet parsed. `chunking`: by default PARALLEL_MIN_BYTES and
    CHUNK_BYTES. A document nested deeper than `max_depth`: FeedError from this call.
    """
    chunking = Chunking.default() if chunking is None else chunking
    pool = None
    declared = ""
    if (
        workers is not None
        and workers.usable
        and len(content) >= chunking.min_bytes
        and not is_json(content, content_type)
        and content.strip()
        and ascii_compatible(content)
    ):
        declared = xml_content_type(content, content_type)
        if not _first_guess_fails(content, declared):
            pool = workers.executor()  # started for the first document that needs it
    if pool is not None and workers is not None:
        split = _Split(content, pool, declared, location, now, max_depth)
        try:
            return split.run(chunking.chunk_bytes, workers)
        except Unsplittable:
            split.cancel()
        except FeedError:  # nested too deep
            split.cancel()
            raise
        except (BrokenProcessPool, RuntimeError, OSError):  # the pool broke, or cannot fork
            split.cancel()
            workers.broken()
    whole = parse_document(
        content, content_type=content_type, location=location, now=now, max_depth=max_depth
    )
    return one_part(whole)


class _Split:
    """Chunks submitted while the tokenizer reads the document: the workers start on the
    first items while the last ones are still being found. Until the end of the document
    is read the chunks end with the end tags of the elements around the items; if something
    else follows the items, every chunk is submitted again with it (or, for a document that
    turns out unsplittable, the chunks are cancelled)."""

    def __init__(
        self,
        content: bytes,
        pool: Executor,
        declared: str,
        location: str,
        now: datetime,
        max_depth: int,
    ) -> None:
        self.content = content
        self.max_depth = max_depth
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
        scanner = Scanner(content, max_depth=self.max_depth)
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
                max_depth=self.max_depth,
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
