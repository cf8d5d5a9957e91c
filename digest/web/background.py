"""The app's background work beside the requests: mailing queued confirmations and applying
spooled unsubscribes, started and stopped with the app (leftovers are taken on start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request

from digest.send.confirm_queue import QueueWorker
from digest.web.context import WebContext
from digest.web.leaving import apply_spool
from digest.web.spool import Spool, spool_dir

log = logging.getLogger(__name__)
STOP_SECONDS = 10.0  # a pass under way gets this long to finish when the app stops


class Background:
    """Two loops: the confirmation queue's worker and the unsubscribe spool's applier."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.spool = Spool(spool_dir(web.settings, web.engine))
        self._wake_queue = asyncio.Event()
        self._wake_spool = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stopping = False
        settings = self.web.settings.web
        self._tasks = [
            asyncio.create_task(
                self._loop(self._queue_pass, self._wake_queue, settings.confirm_poll_seconds)
            ),
            asyncio.create_task(
                self._loop(self._spool_pass, self._wake_spool, settings.spool_poll_seconds)
            ),
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake_queue.set()
        self._wake_spool.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def queued(self) -> None:
        """A request was queued: the worker looks now rather than at its next poll."""
        self._wake_queue.set()

    def spooled(self) -> None:
        self._wake_spool.set()

    async def _loop(
        self, one_pass: Callable[[], Awaitable[None]], wake: asyncio.Event, poll: float
    ) -> None:
        while not self._stopping:
            wake.clear()
            try:
                await one_pass()
            except Exception:  # a bad pass must not end the loop: the next one tries again
                log.exception("background pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll)

    async def _queue_pass(self) -> None:
        worker = QueueWorker(
            self.web.engine, self.web.settings, self.web.sender_factory, self.web.renderer
        )
        await worker.run_once(self.web.clock())

    async def _spool_pass(self) -> None:
        if self.spool.waiting():
            await asyncio.to_thread(apply_spool, self.web, self.spool)


def background_of(request: Request) -> Background:
    found: Background = request.app.state.background
    return found
