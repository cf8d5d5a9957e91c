"""Events are written in batches, off the request path, and flushed on shutdown.

A request only puts its event on an asyncio queue (no database work, so a burst of opens
does not wait on SQLite); a background task drains the queue every `flush_seconds`, or as
soon as `batch` events wait, and writes them with one driver-level executemany in a worker
thread. At flush time each event is completed from its delivery (subscriber, list) and a
fetch within `machine_seconds` of delivery is marked as a machine. When the database
cannot be written the events are kept and tried again; on shutdown everything left is
written before the app stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anyio import to_thread
from sqlalchemy import Connection, Engine, select

from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus, EventKind
from digest.db.tables import DELIVERY, EVENT
from digest.tracking.machines import too_soon
from subscribers.tables import SUBSCRIBER

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) query
_INSERT = (
    "INSERT INTO event (kind, delivery_id, subscriber_id, list_id, link_hash, machine, "
    "machine_reason, user_agent, ip, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(slots=True)
class PendingEvent:
    """An event as a request saw it; the writer fills in what needs the database."""

    kind: str
    at: datetime
    delivery_id: int | None = None
    subscriber_id: int | None = None
    list_id: int | None = None
    link_hash: str | None = None
    machine: bool = False
    machine_reason: str = ""
    user_agent: str = ""
    ip: str | None = None


class EventWriter:
    """Queue in the event loop, batches to the database from a worker thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float = 0.5,
        batch: int = 500,
        max_pending: int = 200_000,
        machine_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.max_pending = max_pending
        self.machine_seconds = machine_seconds
        self.written = 0
        self.dropped = 0
        self._queue: asyncio.Queue[PendingEvent] = asyncio.Queue()
        self._retry: list[PendingEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._retry)

    def record(self, event: PendingEvent) -> bool:
        """Queue `event`; never raises, never waits. False when it had to be dropped."""
        if self.pending >= self.max_pending:
            self.dropped += 1
            return False
        self._queue.put_nowait(event)
        if self._queue.qsize() >= self.batch:
            self._wake.set()
        return True

    async def start(self) -> None:
        self._stopping = False
        self._wake = asyncio.Event()  # bound to the loop that serves (tests start several)
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Stop the background task, then write everything still queued."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _attempt in range(5):
            if not self.pending:
                break
            if not await self.flush():
                await asyncio.sleep(0.2)
        if self.pending:
            log.error("%d events could not be written before shutdown", self.pending)

    async def flush(self) -> bool:
        """Write what is queued now; False (events kept for the next try) on a database error."""
        events = self._retry
        self._retry = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        if not events:
            return True
        try:
            self.written += await to_thread.run_sync(self.write, events)
        except Exception as exc:  # the database is down or locked: keep them, try later
            log.warning("writing %d events failed, will retry: %s", len(events), type(exc).__name__)
            overflow = len(events) + self._queue.qsize() - self.max_pending
            if overflow > 0:
                self.dropped += overflow
                events = events[overflow:]
            self._retry = events
            return False
        return True

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            await self.flush()

    def write(self, events: Sequence[PendingEvent]) -> int:
        """Insert `events` in one transaction (sync; runs in a worker thread). Returns count.

        Events of a delivery or subscriber erased since are dropped: nothing to attach them to.
        """
        with self.engine.begin() as connection:
            sql = DriverSql(connection)
            deliveries = _deliveries(connection, {e.delivery_id for e in events if e.delivery_id})
            people = _subscribers(
                connection,
                {e.subscriber_id for e in events if e.subscriber_id and not e.delivery_id},
            )
            rows: list[tuple[object, ...]] = []
            for event in events:
                if event.delivery_id is not None:
                    found = deliveries.get(event.delivery_id)
                    if found is None:
                        continue
                    event.subscriber_id, event.list_id, delivered_at = found
                    if not event.machine:
                        verdict = too_soon(delivered_at, event.at, self.machine_seconds)
                        if verdict is not None:
                            event.machine, event.machine_reason = True, verdict.reason
                elif event.subscriber_id is not None:
                    if event.subscriber_id not in people:
                        continue
                    if event.kind == EventKind.UNSUBSCRIBE and event.list_id is not None:
                        event.delivery_id = _latest_delivery(
                            connection, event.subscriber_id, event.list_id
                        )
                rows.append(
                    (
                        event.kind,
                        event.delivery_id,
                        event.subscriber_id,
                        event.list_id,
                        event.link_hash,
                        event.machine,
                        event.machine_reason,
                        event.user_agent,
                        event.ip,
                        sql.stamp(EVENT.c.at, event.at),
                    )
                )
            sql.many(_INSERT, rows)
        return len(rows)


def _deliveries(
    connection: Connection, ids: set[int | None]
) -> dict[int, tuple[int, int, datetime | None]]:
    """delivery id -> (subscriber id, list id, when it was delivered)."""
    wanted = sorted(i for i in ids if i is not None)
    found: dict[int, tuple[int, int, datetime | None]] = {}
    for start in range(0, len(wanted), _CHUNK):
        for did, sid, lid, sent_at in connection.execute(
            select(
                DELIVERY.c.id, DELIVERY.c.subscriber_id, DELIVERY.c.list_id, DELIVERY.c.sent_at
            ).where(DELIVERY.c.id.in_(wanted[start : start + _CHUNK]))
        ):
            found[did] = (sid, lid, sent_at)
    return found


def _subscribers(connection: Connection, ids: set[int | None]) -> set[int]:
    wanted = sorted(i for i in ids if i is not None)
    found: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        found.update(
            connection.execute(
                select(SUBSCRIBER.c.id).where(SUBSCRIBER.c.id.in_(wanted[start : start + _CHUNK]))
            ).scalars()
        )
    return found


def _latest_delivery(connection: Connection, subscriber_id: int, list_id: int) -> int | None:
    """The subscriber's latest digest on the list: the edition an unsubscribe is counted in."""
    return connection.execute(
        select(DELIVERY.c.id)
        .where(
            DELIVERY.c.subscriber_id == subscriber_id,
            DELIVERY.c.list_id == list_id,
            DELIVERY.c.status == DeliveryStatus.SENT.value,
        )
        .order_by(DELIVERY.c.sent_at.desc(), DELIVERY.c.id.desc())
        .limit(1)
    ).scalar()
