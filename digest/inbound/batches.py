"""Group commit for the SMTP server: one thread spools what is waiting in one file (one
fsync for all), and only then does each DATA get its 250 (or 451 when it could not)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from digest.inbound.verdicts import Received

log = logging.getLogger(__name__)

STORED = "250 2.0.0 OK: stored"
# The sending MTA keeps the message and tries again later; nothing is lost.
UNAVAILABLE = "451 4.3.0 Temporary failure storing the message, try again later"
MAX_BATCH = 200  # messages per transaction: big enough for bursts, small enough to stay brief
MAX_BATCH_BYTES = 32_000_000  # and bytes per group: a group of big messages closes early
# How long a group stays open for more once its first message is in (a commit delay): in a
# burst over 16 connections, groups grew from 5.5 to 13 messages, and the spool's file work
# (create, write, two fsyncs, rename: ~0.4 ms of CPU a file here) fell with them: the event
# loop's process went from 0.63 to 0.53 ms of CPU a message. A lone message waits 1 ms more.
LINGER = 0.001

Process = Callable[[Sequence[Received]], object]


@dataclass(frozen=True)
class _Item:
    received: Received
    reply: Future[str] | asyncio.Future[str]
    loop: asyncio.AbstractEventLoop | None = None  # the loop of an asyncio reply


class BatchWriter:
    """Takes messages from any thread or event loop (`submit`) and hands whatever has
    gathered meanwhile, up to `max_batch`, to `process` in one call from its own thread.

    `process` keeps a batch durably (the server: writes it to the spool) or raises.
    `unavailable` is the exception that means "cannot keep it now" (the spool cannot be
    written): the whole batch is answered 451.
    Any other exception is a bug in reading some message: the batch is retried one message
    at a time, so one poisonous message cannot hold the others back.
    """

    def __init__(
        self,
        process: Process,
        *,
        unavailable: tuple[type[BaseException], ...],
        max_batch: int = MAX_BATCH,
        linger: float = LINGER,
    ) -> None:
        self._process = process
        self._unavailable = unavailable
        self._max_batch = max_batch
        self._linger = linger
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbound-writer", daemon=True)
        self.batches = 0  # how many transactions (for logs and the benchmark)

    def start(self) -> None:
        self._thread.start()

    def submit(self, received: Received) -> Future[str]:
        """A future SMTP reply for `received`: resolved once it is stored (or could not be).
        A reply cancelled before the writer takes it (the client left) is not processed."""
        reply: Future[str] = Future()
        self._queue.put(_Item(received, reply))
        return reply

    def submit_here(self, received: Received) -> asyncio.Future[str]:
        """As `submit`, from a coroutine: the reply is an asyncio future of the running loop,
        and a group's replies are set in one callback (one wake-up of the loop per group,
        where wrapping each `submit` future costs one per message)."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[str] = loop.create_future()
        self._queue.put(_Item(received, reply, loop))
        return reply

    def close(self) -> None:
        """Process what was submitted before, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            size = len(first.received.raw)
            closes = time.monotonic() + self._linger
            while len(items) < self._max_batch and size < MAX_BATCH_BYTES:
                left = closes - time.monotonic()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                items.append(item)
                size += len(item.received.raw)
            live = [item for item in items if _taken(item)]
            if live:
                self._write(live)

    def _write(self, items: list[_Item]) -> None:
        try:
            self._process([item.received for item in items])
        except self._unavailable as exc:
            log.warning("inbound: %d message(s) answered 451: %s", len(items), exc)
            _answer(items, UNAVAILABLE)
            return
        except Exception:
            if len(items) > 1:
                for item in items:
                    self._write([item])
                return
            log.exception("inbound: a message could not be processed; answered 451")
            _answer(items, UNAVAILABLE)
            return
        self.batches += 1
        _answer(items, STORED)


def _taken(item: _Item) -> bool:
    """False when the reply was cancelled first (its client left): then it is not kept."""
    if isinstance(item.reply, Future):
        return item.reply.set_running_or_notify_cancel()
    # Read from this thread: a cancel racing it keeps a message the client will send again,
    # a duplicate that processing recognises (as a cancel after the take always did).
    return not item.reply.cancelled()


def _answer(items: list[_Item], reply: str) -> None:
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[str]]] = {}
    for item in items:
        if isinstance(item.reply, Future):
            item.reply.set_result(reply)
        elif item.loop is not None:
            loops.setdefault(item.loop, []).append(item.reply)
    for loop, replies in loops.items():
        try:
            loop.call_soon_threadsafe(_settle, replies, reply)
        except RuntimeError:  # the loop is closed: nobody waits for these replies any more
            continue


def _settle(replies: list[asyncio.Future[str]], reply: str) -> None:
    for future in replies:
        if not future.done():
            future.set_result(reply)
