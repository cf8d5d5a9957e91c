"""What each scheduled job does: ingest feeds, poll the bounce mailbox, dispatch due digests,
send retries, prune.

Plain functions of the engine and settings that return counts (for the job's log line);
`digest.schedule.scheduler` decides when they run. Sending runs `digest.send.run.send_list`,
as `digest send` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import session_scope
from digest.db.locks import Busy
from digest.inbound.imap import ImapError, poll
from digest.inbound.process import InboundUnavailable, Processor
from digest.inbound.store import purge_raw
from digest.ingest import feeds as feed_store
from digest.ingest.pipeline import FeedStatus, ingest
from digest.render.renderer import Renderer, RenderOptions
from digest.send.breaker import BreakerTripped
from digest.send.dispatcher import DispatchOptions, DispatchReport, RunHooks
from digest.send.outcome import Envelope, Outcome, Sender, SenderLifecycle
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from digest.tracking.retention import prune_events
from subscribers.lists import all_lists
from subscribers.models import MailingList

logger = logging.getLogger(__name__)

Counts = dict[str, int]

# Rows claimed at a time by the scheduler: on SIGTERM the running batch is finished and
# recorded before the process exits, so a small batch keeps that wait short.
BATCH_SIZE = 100


class OnDemandSender(SenderLifecycle):
    """Opens the real sender at the first message: a tick with nothing to send connects to
    nothing. If opening fails, every send of this run raises the same error."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self._opened = False
        self._failed: BaseException | None = None
        self._lock = asyncio.Lock()

    @property
    def eight_bit(self) -> bool:  # type: ignore[override]
        return self._opened and self.inner.eight_bit

    async def open(self) -> None:
        return None

    async def _ensure_open(self) -> None:
        async with self._lock:
            if self._failed is not None:
                raise self._failed
            if not self._opened:
                try:
                    await self.inner.open()
                except BaseException as exc:
                    self._failed = exc
                    raise
                self._opened = True

    async def send(self, envelope: Envelope) -> Outcome:
        if not self._opened:
            await self._ensure_open()
        return await self.inner.send(envelope)

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.inner.close()


class Jobs:
    """The scheduler's jobs over one database; each returns counts for its log line.

    `stop()` is checked between feeds, lists and batches: once it is true a job finishes
    the batch in flight, records it and returns.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        sender_factory: Callable[[], Sender] | None = None,
        stop: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sender_factory = sender_factory or (lambda: SmtpSender(settings.smtp))
        self.stop = stop
        self.clock = clock
        self.options = DispatchOptions.from_settings(settings, batch_size=BATCH_SIZE)
        self.max_lateness = timedelta(hours=settings.scheduler.lateness_hours)
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        # Built once, not per tick and list: it parses every template (Jinja2 still reloads
        # a template whose file changed).
        if self._renderer is None:
            self._renderer = Renderer(RenderOptions.from_settings(self.settings))
        return self._renderer

    def ingest(self) -> Counts:
        """Fetch every feed, one at a time (a failed feed is counted, the others go on)."""
        with session_scope(self.engine) as session:
            urls = [feed.url for feed in feed_store.all_feeds(session)]
        counts: Counter[str] = Counter(feeds=0, new=0, updated=0, feeds_failed=0)
        for url in urls:
            if self.stop():
                break
            try:
                report = ingest(self.engine, self.settings.ingest, only=url, clock=self.clock)
            except Exception as exc:  # e.g. removed meanwhile: that feed's failure only
                counts["feeds"] += 1
                counts["feeds_failed"] += 1
                logger.warning("feed %s failed: %s: %s", url, type(exc).__name__, exc)
                continue
            for one in report.feeds:
                counts["feeds"] += 1
                counts["new"] += one.new
                counts["updated"] += one.updated
                if one.status is FeedStatus.FAILED:
                    counts["feeds_failed"] += 1
                    logger.warning("feed %s failed: %s", one.url, one.error)
        return dict(counts)

    def dispatch(self) -> Counts:
        """Plan and send every list's digests that have come due, and their due retries."""
        return self._each_list(plan=True)

    def retry(self) -> Counts:
        """Send every list's failed deliveries whose next attempt time has come."""
        return self._each_list(plan=False)

    def inbound(self) -> Counts:
        """Poll `[inbound.imap]` once: store and apply new bounces, complaints and mailto
        unsubscribes, and move them out of the folder (unknown ones to a person's folder).
        The database or the server away: nothing is moved, and the next poll tries again."""
        imap = self.settings.inbound.imap
        if not imap.host:
            return {}
        processor = Processor(self.engine, self.settings, clock=self.clock)
        try:
            tally = poll(
                imap,
                processor.process,
                max_bytes=self.settings.inbound.max_message_bytes,
                stop=self.stop,
            )
        except (InboundUnavailable, ImapError) as exc:
            logger.warning("inbound: %s; nothing moved, the next poll takes them again", exc)
            return {"failed": 1}
        return {**tally.counts(), "failed": len(tally.unreadable)}

    def housekeeping(self) -> Counts:
        """Delete tracking events older than `[scheduler] retention_days`, and the raw bytes
        of inbound messages older than `[inbound] keep_days` (their events stay)."""
        now = self.clock()
        before = now - timedelta(days=self.settings.scheduler.retention_days)
        pruned = prune_events(self.engine, before=before, stop=self.stop)
        kept = now - timedelta(days=self.settings.inbound.keep_days)
        return {
            "events_pruned": pruned,
            "inbound_purged": purge_raw(self.engine, kept, stop=self.stop),
        }

    def _each_list(self, *, plan: bool) -> Counts:
        with session_scope(self.engine) as session:
            lists = all_lists(session)
        keys = DispatchReport().as_dict() if plan else {"sent": 0, "temporary": 0, "permanent": 0}
        counts: Counter[str] = Counter({"lists": 0, **keys, "busy": 0, "failed": 0})
        for mailing_list in lists:
            if self.stop():
                break
            counts["lists"] += 1
            try:
                report = asyncio.run(self._send(mailing_list, plan=plan))
            except Busy as exc:  # `digest send`, or the other tick, is on this list right now
                counts["busy"] += 1
                logger.info("list %s skipped this time: %s", mailing_list.slug, exc)
                continue
            except BreakerTripped as exc:  # its editions are held until an editor releases them
                counts["failed"] += 1
                logger.error("list %s: %s", mailing_list.slug, exc)
                continue
            except Exception:
                # One list's failure (a template, the SMTP server) must not stop the others;
                # its rows stay queued and the next tick tries again.
                counts["failed"] += 1
                logger.exception("list %s failed; the next tick retries it", mailing_list.slug)
                continue
            counts.update({k: v for k, v in report.as_dict().items() if k in keys})
        return dict(counts)

    async def _send(self, mailing_list: MailingList, *, plan: bool) -> DispatchReport:
        return await send_list(
            self.engine,
            mailing_list,
            OnDemandSender(self.sender_factory()),
            RunOptions(self.options, plan=plan, max_lateness=self.max_lateness),
            RunHooks(clock=self.clock, stop=self.stop, renderer=self.renderer),
        )
