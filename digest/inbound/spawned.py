"""The spool's drain in a process of its own, so that reading and storing messages
(CPU-bound: MIME parsing, the policy's SQL) runs on another core than the event loop that
receives them, instead of sharing one interpreter lock with it.

The parent talks to the child through a pipe only: a byte means "files were spooled", the
end of the pipe means "stop" (the parent closed it, or died). No lock is shared, so a child
killed at any moment cannot leave the parent or the next child waiting on one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from digest.config import Settings
from digest.service.logs import install

log = logging.getLogger(__name__)

_STOP_WAIT = 120.0  # seconds for the child to finish its batch and its grace period


class _Pipe:
    """The child's end: `wake` and `stop` flags (digest.inbound.spool_drain.Flag) read
    from the parent's pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = False
        self.stopped = False
        os.set_blocking(fd, False)

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if data:
            self.pending = True
        else:
            self.stopped = True


class _Wake:
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def is_set(self) -> bool:
        return self.pipe.pending

    def set(self) -> None:
        self.pipe.pending = True

    def clear(self) -> None:
        self.pipe.read(0)  # what was written so far (or the end of the pipe)
        self.pipe.pending = False

    def wait(self, timeout: float | None = None) -> bool:
        if not self.pipe.pending and not self.pipe.stopped:
            self.pipe.read(60.0 if timeout is None else timeout)
        return self.pipe.pending or self.pipe.stopped


class _Stop:
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def is_set(self) -> bool:
        return self.pipe.stopped

    def set(self) -> None:
        self.pipe.stopped = True

    def clear(self) -> None:
        """A stop is final."""

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while not self.pipe.stopped and (left := deadline - time.monotonic()) > 0:
            self.pipe.read(left)
        return self.pipe.stopped


def _child(settings: Settings, url: str, directory: str, reader: Connection) -> None:
    # The parent decides when to stop (it closes the pipe): a Ctrl-C sent to the whole
    # process group must not end a batch halfway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    install(settings.log)  # the parent's stdout, in its format: one log, one line a record
    from digest.db.engine import make_engine
    from digest.inbound.process import InboundUnavailable, Processor
    from digest.inbound.spool import Spool
    from digest.inbound.spool_drain import Drain

    engine = make_engine(url, busy_timeout_seconds=settings.database.busy_timeout_seconds)
    processor = Processor(engine, settings)
    drain = Drain(Spool(Path(directory)), processor.process, unavailable=(InboundUnavailable,))
    pipe = _Pipe(reader.fileno())
    try:
        drain.run(_Wake(pipe), _Stop(pipe))
    finally:
        engine.dispose()


class SpawnedDrain:
    """Runs a Drain of the spool in `directory` with `Processor(engine for url, settings)`
    in a spawned child. `wake()` after each spooled file; `check()` now and then starts a
    child that died (its batch's files are still in the spool); `close()` stops it."""

    def __init__(self, settings: Settings, url: str, directory: Path) -> None:
        self._settings = settings
        self._url = url
        self._directory = directory
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._writer: Connection | None = None
        self._closing = False

    def start(self) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_child,
            args=(self._settings, self._url, str(self._directory), reader),
            name="inbound-drain",
        )
        process.start()
        reader.close()  # the child's alone: its end of file is our closing or death
        os.set_blocking(writer.fileno(), False)
        self._process, self._writer = process, writer

    def wake(self) -> None:
        if self._writer is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError):  # full: a wake waits
            os.write(self._writer.fileno(), b"\0")

    def check(self) -> None:
        """Start the child again if it died (killed, out of memory)."""
        if self._process is None or self._process.is_alive() or self._closing:
            return
        log.error(
            "inbound: the drain process exited (%s); starting another", self._process.exitcode
        )
        if self._writer is not None:
            self._writer.close()
        self.start()

    def close(self) -> None:
        """Stop the child: it finishes its batch, then what waits within its grace period."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._process is not None:
            self._process.join(_STOP_WAIT)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
