"""The spool's drain in a process of its own, so that reading and storing messages
(CPU-bound: MIME parsing, the policy's SQL) runs on another core than the event loop that
receives them, instead of sharing one interpreter lock with it."""

from __future__ import annotations

import logging
import multiprocessing
import signal
from pathlib import Path
from typing import Any

from digest.config import Settings

log = logging.getLogger(__name__)

_STOP_WAIT = 120.0  # seconds for the child to finish its batch and its grace period


def _child(settings: Settings, url: str, directory: str, wake: Any, stop: Any) -> None:
    # The parent decides when to stop (it sets `stop`): a Ctrl-C sent to the whole process
    # group must not end a batch halfway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from digest.db.engine import make_engine
    from digest.inbound.process import InboundUnavailable, Processor
    from digest.inbound.spool import Spool
    from digest.inbound.spool_drain import Drain

    engine = make_engine(url, busy_timeout_seconds=settings.database.busy_timeout_seconds)
    parent = multiprocessing.parent_process()
    processor = Processor(engine, settings)
    drain = Drain(Spool(Path(directory)), processor.process, unavailable=(InboundUnavailable,))
    try:
        drain.run(wake, stop, alive=lambda: parent is None or parent.is_alive())
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
        self._wake = self._context.Event()
        self._stop = self._context.Event()
        self._process: Any = None

    def start(self) -> None:
        process = self._context.Process(
            target=_child,
            args=(self._settings, self._url, str(self._directory), self._wake, self._stop),
            name="inbound-drain",
        )
        process.start()
        self._process = process

    def wake(self) -> None:
        self._wake.set()

    def check(self) -> None:
        """Start the child again if it died (killed, out of memory)."""
        if self._process is not None and not self._process.is_alive() and not self._stop.is_set():
            log.error(
                "inbound: the drain process exited (%s); starting another",
                self._process.exitcode,
            )
            self.start()

    def close(self) -> None:
        """Stop the child: it finishes its batch, then what waits within its grace period."""
        self._stop.set()
        self._wake.set()
        if self._process is not None:
            self._process.join(_STOP_WAIT)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
