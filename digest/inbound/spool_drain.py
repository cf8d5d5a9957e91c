"""The spool's drain: the files `digest inbound` spooled go through the Processor in
batches, oldest first, and a file is removed only once all its messages are committed.

The database unavailable (InboundUnavailable): the files stay, and the drain tries again
after a pause that doubles up to a bound. Any other failure is a bug in reading some
message: the batch is tried again one message at a time, and a message that still fails
is kept in the spool's bad/ folder for a human, so that it cannot hold the others back.
A crash between a commit and the removal makes the drain read the file again; its
messages are then duplicates (same bytes, same SHA-256) and change nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from digest.inbound.spool import Spool
from digest.inbound.verdicts import Received

log = logging.getLogger(__name__)

MAX_BATCH = 200  # messages per transaction: ~1 ms each, so a batch holds the lock briefly
# Bytes per transaction at most (a file over it goes alone): memory stays flat even when
# every message is near [inbound] max_message_bytes.
MAX_BATCH_BYTES = 32_000_000
IDLE_WAIT = 1.0  # seconds between looks at an empty spool when nobody says there is more
FIRST_PAUSE = 0.25  # seconds after the database was unavailable; doubles...
MAX_PAUSE = 10.0  # ...up to this
STOP_GRACE = 10.0  # seconds a stopping drain keeps processing what is waiting
# After a pass that took less than a quarter batch, the drain waits this long for more: a
# transaction costs ~7 ms whatever its size, so during a burst passes of 10 messages cost
# twice the CPU a message that passes of 200 do (1.3 ms against 0.65).
GATHER = 0.05

Process = Callable[[Sequence[Received]], object]


class Flag(Protocol):
    """threading.Event or multiprocessing's Event."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class DrainOptions:
    max_batch: int = MAX_BATCH
    max_bytes: int = MAX_BATCH_BYTES
    idle_wait: float = IDLE_WAIT
    first_pause: float = FIRST_PAUSE
    max_pause: float = MAX_PAUSE
    stop_grace: float = STOP_GRACE
    gather: float = GATHER


@dataclass(frozen=True)
class Pass:
    """One batch's outcome: messages committed, and whether the database was unavailable."""

    processed: int
    unavailable: bool = False


class Drain:
    """Takes the spool's files through `process` (see the module docstring)."""

    def __init__(
        self,
        spool: Spool,
        process: Process,
        *,
        unavailable: tuple[type[BaseException], ...],
        options: DrainOptions = DrainOptions(),
    ) -> None:
        self.spool = spool
        self.process = process
        self.unavailable = unavailable
        self.options = options
        self.processed = 0

    def once(self) -> Pass | None:
        """Process the oldest waiting files, up to about `max_batch` messages, in one
        transaction; None when nothing waits."""
        paths: list[Path] = []
        batch: list[Received] = []
        size = 0
        for path in self.spool.waiting():
            messages = self.spool.read(path)
            if messages is None:
                continue  # gone, or moved to bad/
            more = sum(len(m.raw) for m in messages)
            if batch and (
                len(batch) + len(messages) > self.options.max_batch
                or size + more > self.options.max_bytes
            ):
                break
            paths.append(path)
            batch.extend(messages)
            size += more
        if not paths:
            return None
        if batch:
            try:
                self._batch(batch)
            except self.unavailable as exc:
                log.warning("inbound spool: %d message(s) wait: %s", len(batch), exc)
                return Pass(0, unavailable=True)
        self.spool.remove(paths)
        self.processed += len(batch)
        return Pass(len(batch))

    def _batch(self, batch: list[Received]) -> None:
        try:
            self.process(batch)
        except self.unavailable:
            raise
        except Exception as exc:
            if len(batch) == 1:
                self.spool.reject(batch[0], f"{type(exc).__name__}: {exc}")
                log.exception("inbound spool: a message could not be processed")
                return
            for one in batch:
                self._batch([one])

    def run(self, wake: Flag, stop: Flag, alive: Callable[[], bool] = lambda: True) -> None:
        """Drain until `stop` (or `alive()` turns false: the server is gone); `wake` says
        that files were added. Once stopped, what waits is processed for at most
        `stop_grace` seconds while the database answers; the rest waits for the next start."""
        pause = self.options.first_pause
        while not stop.is_set() and alive():
            wake.clear()  # before looking: a file spooled after this wakes the wait below
            outcome = self.once()
            if outcome is None:
                wake.wait(self.options.idle_wait)
            elif outcome.unavailable:
                stop.wait(pause)
                pause = min(pause * 2, self.options.max_pause)
            else:
                pause = self.options.first_pause
                if outcome.processed < self.options.max_batch // 4:
                    stop.wait(self.options.gather)  # let the burst gather for the next pass
        self.finish()

    def finish(self) -> None:
        """The last passes of a stopping drain (see `run`)."""
        deadline = time.monotonic() + self.options.stop_grace
        while time.monotonic() < deadline:
            outcome = self.once()
            if outcome is None or outcome.unavailable:
                break
        left = len(self.spool.waiting())
        if left:
            log.info("inbound spool: %d file(s) left for the next start", left)


class ThreadedDrain:
    """A Drain in a thread of this process (a Processor given to the server, in tests);
    the same `start`/`wake`/`check`/`close` as the spawned one."""

    def __init__(self, drain: Drain) -> None:
        self.drain = drain
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=drain.run, args=(self._wake, self._stop), name="inbound-drain", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def check(self) -> None:
        """Nothing to do: the thread ends only when stopped."""

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
