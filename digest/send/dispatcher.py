"""The main job: select who is due, plan the outbox, then build and send each message.

Compile once per segment (Jinja2 → MJML → HTML, MIME headers), personalise per recipient
(tokens, name: a join), send over the pool, and record every outcome as soon as its SMTP
transaction ends. Works the same whether it planned the rows itself or resumes rows a
crashed run left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from digest.clock import utcnow
from digest.config import Settings
from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus, EditionStatus
from digest.db.tables import DELIVERY
from digest.editions.controls import EditionControls
from digest.editions.workflow import editorial_around, load_controls
from digest.errors import InvalidInput
from digest.preview.delivery import load_articles, load_topics, segment_for
from digest.render.compiled import CompiledDigest
from digest.render.data import ArticleView, TopicView
from digest.render.renderer import Recipient, Renderer, RenderOptions
from digest.selection.due import due_in_batches
from digest.send.mime import DkimSigner, EncodedSlots, MessageTemplate, make_message_id
from digest.send.outbox import Claimed, Recorder, Result, claim, plan_batches, requeue
from digest.send.outcome import Envelope, Outcome, RetryPolicy, Sender
from digest.tracking.tokens import Signer, tokens_for
from subscribers.models import MailingList

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchOptions:
    """What dispatching needs from the settings, copied once at the entry point."""

    settings: Settings
    max_articles: int
    batch_size: int = 500
    concurrency: int = 4
    tracking: bool = True
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # `[workers] enabled` on PostgreSQL: plan here, `digest worker` processes send.
    plan_only: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DispatchOptions:
        options = cls(
            settings=settings,
            max_articles=settings.digest.max_articles,
            concurrency=settings.smtp.connections,
            policy=RetryPolicy.from_settings(settings.smtp),
            plan_only=settings.workers.enabled
            and make_url(settings.database.url).get_backend_name() != "sqlite",
        )
        return replace(options, **overrides)  # type: ignore[arg-type]


@dataclass
class DispatchReport:
    due: int = 0
    queued: int = 0
    skipped_empty: int = 0
    already_planned: int = 0
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    skipped_unsubscribed: int = 0
    segments: int = 0
    late: int = 0  # past the scheduler's lateness limit: skipped for that day
    waiting: int = 0  # due, but their edition is held or awaits an editor's approval

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _CompiledSegment:
    digest: CompiledDigest
    template: MessageTemplate
    html: EncodedSlots  # the bodies already UTF-8 with CRLF: per message only the slots change
    text: EncodedSlots


class Dispatcher:
    """Sends one list's due digests through `sender` (SMTP pool or .eml files)."""

    def __init__(
        self,
        engine: Engine,
        mailing_list: MailingList,
        sender: Sender,
        options: DispatchOptions,
        *,
        renderer: Renderer | None = None,
        progress: Callable[[int, int], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        settings = options.settings
        self.engine = engine
        self.mailing_list = mailing_list
        self.sender = sender
        self.options = options
        self.renderer = renderer or Renderer(RenderOptions.from_settings(settings))
        self.signer = Signer(settings.web.secret_key)
        self.dkim = DkimSigner.from_settings(settings.dkim, settings.sender)
        self.recorder = Recorder(engine, options.policy)
        self.progress = progress
        self.clock = clock
        self._compiled: dict[tuple[object, ...], _CompiledSegment] = {}
        self._articles: dict[int, ArticleView] = {}
        self._topics: dict[int, TopicView] = {}
        self._editions: dict[int, EditionControls | None] = {}

    async def run(
        self,
        *,
        now: datetime | None = None,
        day: date | None = None,
        limit: int | None = None,
        max_lateness: timedelta | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> DispatchReport:
        """Plan what is due at `now` (default: the clock), then send it and due retries.

        `max_lateness`: see `select_due`; `stop`: checked before each batch is claimed.
        """
        now = self.clock() if now is None else now
        report = DispatchReport()
        with self.engine.connect() as connection:
            editorial = editorial_around(connection, self.mailing_list, now, day)
        # Batch by batch: memory does not grow with the list (1,000,000 subscribers).
        batches = due_in_batches(
            self.engine,
            self.mailing_list,
            now=now,
            max_articles=self.options.max_articles,
            day=day,
            max_lateness=max_lateness,
            editorial=editorial,
        )
        planned = plan_batches(self.engine, batches, now)
        report.due = planned.due
        report.queued = planned.queued
        report.skipped_empty = planned.skipped_empty
        report.already_planned = planned.already_planned
        report.segments = planned.segments
        report.late = planned.skipped_late
        report.waiting = planned.waiting
        if planned.late:
            logger.warning(
                "list %s: %d digest(s) skipped, more than %s after their hour: %s",
                self.mailing_list.slug,
                planned.skipped_late,
                max_lateness,
                ", ".join(f"{d.email} ({d.local_date})" for d in planned.late[:10])
                + (f" and {planned.skipped_late - 10} more" if planned.skipped_late > 10 else ""),
            )
        await self.send_claimed(report, now=now, day=day, limit=limit, stop=stop)
        self._close_editions()
        return report

    async def send_claimed(
        self,
        report: DispatchReport,
        *,
        now: datetime,
        day: date | None = None,
        limit: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Claim and send batches until nothing sendable is left (or `limit`, or `stop()`).

        Plan-only (workers enabled): nothing here; `digest worker` claims and sends."""
        if self.options.plan_only:
            return
        done = 0

        def skipped(count: int) -> None:
            report.skipped_unsubscribed += count

        while (limit is None or done < limit) and not (stop is not None and stop()):
            size = (
                self.options.batch_size
                if limit is None
                else min(self.options.batch_size, limit - done)
            )
            batch = claim(
                self.engine,
                list_id=self.mailing_list.id or 0,
                now=now,
                limit=size,
                edition_date=day,
                on_skipped=skipped,
            )
            if not batch:
                break
            done += len(batch)
            await self._send_batch(batch, report)
            if self.progress is not None:
                self.progress(done, report.queued)

    async def send_batch(self, batch: Sequence[Claimed], report: DispatchReport) -> None:
        """Send rows claimed elsewhere (by `digest worker`) and record each outcome."""
        await self._send_batch(batch, report)

    def close_editions(self) -> None:
        self._close_editions()

    async def _send_batch(self, batch: Sequence[Claimed], report: DispatchReport) -> None:
        self._load_articles({a for c in batch for a in c.article_ids})
        try:  # a template that does not compile stops the run before any message is built
            for item in batch:
                self._compile(item)
        except BaseException:
            requeue(self.engine, [c.id for c in batch])
            raise
        queue: asyncio.Queue[Claimed] = asyncio.Queue()
        for item in batch:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                item = queue.get_nowait()
                await self._send_one(item, report)

        with self.recorder.connected():  # one connection per batch, still a commit per outcome
            await asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))

    async def _send_one(self, item: Claimed, report: DispatchReport) -> None:
        try:
            await self._deliver(item, report)
        except InvalidInput as exc:  # e.g. an address that cannot go into a header
            outcome = Outcome("permanent", None, f"not sendable: {exc}", "")
            self._record(item, outcome, "", (), report)

    async def _deliver(self, item: Claimed, report: DispatchReport) -> None:
        compiled = self._compile(item)
        tokens = tokens_for(
            self.signer, subscriber_id=item.subscriber_id, list_id=item.list_id, delivery_id=item.id
        )
        values = compiled.digest.slot_values(
            Recipient(
                name=item.name,
                view_token=tokens.view,
                unsubscribe_token=tokens.unsubscribe,
                preferences_token=tokens.preferences,
                open_token=tokens.open,
                click_token=tokens.click,
            )
        )
        message_id = make_message_id(self.options.settings.sender.list_id_domain)
        data = compiled.template.build(
            to_address=item.email,
            to_name=item.name,
            html=compiled.html.fill(values.html),
            text=compiled.text.fill(values.text),
            unsubscribe_url=values.unsubscribe_url,
            unsubscribe_mailto=self._mailto(tokens.unsubscribe),
            message_id=message_id,
        )
        outcome = await self.sender.send(
            Envelope(
                sender=self.options.settings.sender.from_address,
                recipient=item.email,
                data=data,
            )
        )
        self._record(item, outcome, message_id, compiled.digest.article_ids, report)

    def _record(
        self,
        item: Claimed,
        outcome: Outcome,
        message_id: str,
        article_ids: tuple[int, ...],
        report: DispatchReport,
    ) -> None:
        status = self.recorder.record(
            item,
            Result(
                delivery_id=item.id,
                status=outcome.status,
                code=outcome.code,
                message=outcome.message,
                message_id=message_id or None,
                email=item.email,
                hard_bounce=outcome.hard_bounce,
                article_ids=article_ids,
            ),
            self.clock(),
        )
        if status == DeliveryStatus.SENT:
            report.sent += 1
        elif status == DeliveryStatus.FAILED_TEMPORARY:
            report.temporary += 1
        else:
            report.permanent += 1
            logger.warning("%s failed for good: %s %s", item.email, outcome.code, outcome.message)

    def _mailto(self, token: str) -> str:
        sender = self.options.settings.sender
        address = sender.unsubscribe_address or f"unsubscribe@{sender.list_id_domain}"
        return f"mailto:{address}?subject=unsubscribe%20{token}"

    def _compile(self, item: Claimed) -> _CompiledSegment:
        key = item.segment_key
        found = self._compiled.get(key)
        if found is not None:
            return found
        self._load_topics()
        controls = self._controls(item.edition_id)
        # The same segment as "view in browser" rebuilds from the delivery row.
        segment = segment_for(
            topic_ids=item.topic_ids,
            article_ids=item.article_ids,
            day=item.local_date,
            locale=item.locale,
            mailing_list=(self.mailing_list.name, self.mailing_list.cadence),
            topics=self._topics,
            articles=self._articles,
            tracking=self.options.tracking,
            controls=controls,
        )
        digest = self.renderer.compile_digest(segment)
        self._store_links(digest)
        template = MessageTemplate(
            self.options.settings.sender,
            list_name=self.mailing_list.name,
            list_slug=self.mailing_list.slug,
            subject=digest.subject,
            locale=item.locale,
            campaign=f"edition{item.edition_id}",
            stream=self.mailing_list.cadence,
            signer=self.dkim,
        )
        found = self._compiled[key] = _CompiledSegment(
            digest,
            template,
            EncodedSlots(digest.html_template),
            EncodedSlots(digest.text_template),
        )
        return found

    def _controls(self, edition_id: int) -> EditionControls | None:
        """The editors' lead, note and subject of an edition (read once per run)."""
        if edition_id not in self._editions:
            with self.engine.connect() as connection:
                self._editions[edition_id] = load_controls(connection, edition_id)
        return self._editions[edition_id]

    def _store_links(self, digest: CompiledDigest) -> None:
        if not digest.links:
            return
        with self.engine.begin() as connection:
            sql = DriverSql(connection)
            stamp = sql.stamp(DELIVERY.c.created_at, self.clock())
            sql.many(
                "INSERT INTO link (hash, url, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (hash) DO NOTHING",
                [(suffix.lstrip("."), url, stamp) for suffix, url in digest.links.items()],
            )

    def _load_topics(self) -> None:
        if not self._topics:
            with self.engine.connect() as connection:
                self._topics = load_topics(connection)

    def _load_articles(self, ids: set[int]) -> None:
        missing = ids - self._articles.keys()
        if not missing:
            return
        self._load_topics()
        with self.engine.connect() as connection:
            self._articles.update(load_articles(connection, missing, self._topics))

    def _close_editions(self) -> None:
        """Editions of this list with nothing left to send or retry are `sent`."""
        with self.engine.begin() as connection:
            sql = DriverSql(connection)
            m = sql.mark
            connection.exec_driver_sql(
                f"UPDATE edition SET status = {m} WHERE list_id = {m} AND status = {m} "
                f"AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.edition_id = edition.id "
                f"AND d.status IN ({m}, {m}, {m}))",
                (
                    EditionStatus.SENT.value,
                    self.mailing_list.id,
                    EditionStatus.SENDING.value,
                    DeliveryStatus.QUEUED.value,
                    DeliveryStatus.SENDING.value,
                    DeliveryStatus.FAILED_TEMPORARY.value,
                ),
            )
