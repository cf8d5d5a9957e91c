"""The main job: select who is due, plan the outbox, then build and send each message.

Compile once per segment (Jinja2 → MJML → HTML, MIME headers), personalise per recipient
(tokens, name: a join), send over the pool, and hand every outcome to the recorder's thread
as its SMTP transaction ends (`digest.send.record`). Works the same whether it planned the
rows itself or resumes rows a crashed run left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from digest.catalog.articles import article_views
from digest.catalog.topics import topic_views
from digest.catalog.views import ArticleView, TopicView
from digest.clock import utcnow
from digest.config import SenderSettings, Settings
from digest.editions.controls import EditionControls
from digest.editions.states import finish_sent
from digest.editions.workflow import editorial_around, load_controls
from digest.errors import InvalidInput
from digest.render.compiled import CompiledDigest
from digest.render.renderer import Recipient, Renderer, RenderOptions
from digest.selection.due import PlanRequest, due_in_batches
from digest.selection.segments import Issue, build_segment
from digest.send.addressing import DeliveryAddresses
from digest.send.bodies import EightBitBody
from digest.send.breaker import Breaker, BreakerOptions
from digest.send.claim import claim, requeue
from digest.send.claimed import Claimed
from digest.send.halt import halt
from digest.send.mime import DkimSigner, EncodedSlots, MessageParts, MessageTemplate, SharedHeaders
from digest.send.outcome import Envelope, Outcome, Sender
from digest.send.plan import plan_batches
from digest.send.record import Attempt, Recorder, RecordOptions
from digest.send.report import DispatchReport as DispatchReport  # its old home
from digest.send.retry import RetryPolicy
from digest.tracking.links import store_links
from digest.tracking.tokens import Signer, tokens_for
from subscribers.models import MailingList

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchOptions:
    """What dispatching needs from the settings, copied once at the entry point."""

    max_articles: int
    sender: SenderSettings
    render: RenderOptions
    secret_key: str  # signs the tracking and unsubscribe tokens
    dkim: DkimSigner | None = None
    batch_size: int = 500
    concurrency: int = 4
    tracking: bool = True
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    record: RecordOptions = field(default_factory=RecordOptions)
    # `[workers] enabled` on PostgreSQL: plan here, `digest worker` processes send.
    plan_only: bool = False
    breaker: BreakerOptions = field(default_factory=BreakerOptions)
    # Each delivery's envelope sender, mailto, Message-ID (None: without a bounce domain).
    addresses: DeliveryAddresses | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DispatchOptions:
        warning = settings.link_secret_warning()  # ConfigError where links reach others
        if warning is not None:
            logger.warning(warning)
        options = cls(
            max_articles=settings.digest.max_articles,
            sender=settings.sender,
            render=RenderOptions.from_settings(settings),
            secret_key=settings.web.secret_key,
            dkim=DkimSigner.from_settings(settings.dkim, settings.sender),
            concurrency=settings.smtp.connections,
            policy=RetryPolicy.from_settings(settings.smtp),
            breaker=BreakerOptions.from_settings(settings.smtp),
            addresses=DeliveryAddresses.from_settings(settings),
            plan_only=settings.workers.enabled
            and make_url(settings.database.url).get_backend_name() != "sqlite",
        )
        return replace(options, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunHooks:
    """What the calling process lends the run: its clock, stop flag, progress bar, renderer,
    and the breaker that judges its outcomes (a worker shares one across its lists)."""

    clock: Callable[[], datetime] = utcnow
    stop: Callable[[], bool] | None = None
    progress: Callable[[int, int], None] | None = None
    renderer: Renderer | None = None
    breaker: Breaker | None = None


@dataclass
class _CompiledSegment:
    digest: CompiledDigest
    template: MessageTemplate
    html: EncodedSlots  # the bodies already UTF-8 with CRLF: per message only the slots change
    text: EncodedSlots
    _eight_bit: EightBitBody | bool | None = False  # False: not prepared yet

    def eight_bit(self) -> EightBitBody | None:
        """The segment's 8bit body, prepared at its first use (None: it needs base64)."""
        if self._eight_bit is False:
            self._eight_bit = EightBitBody.prepare(
                self.template.eight_bit_parts(),
                self.digest.text_template,
                self.digest.html_template,
            )
        assert not isinstance(self._eight_bit, bool)
        return self._eight_bit


class Dispatcher:
    """Sends one list's due digests through `sender` (SMTP pool or .eml files)."""

    def __init__(
        self,
        engine: Engine,
        mailing_list: MailingList,
        sender: Sender,
        options: DispatchOptions,
        hooks: RunHooks | None = None,
    ) -> None:
        hooks = hooks or RunHooks()
        self.engine = engine
        self.mailing_list = mailing_list
        self.sender = sender
        self.options = options
        self.renderer = hooks.renderer or Renderer(options.render)
        self.signer = Signer(options.secret_key)
        self.addresses = options.addresses or DeliveryAddresses.without_bounce_domain(
            options.sender, options.secret_key
        )
        self.dkim = options.dkim
        self.progress = hooks.progress
        self.clock = hooks.clock
        self.breaker = hooks.breaker or Breaker(options.breaker)
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
            PlanRequest(
                now=now,
                max_articles=self.options.max_articles,
                day=day,
                max_lateness=max_lateness,
                editorial=editorial,
            ),
        )
        planned = plan_batches(self.engine, batches, now)
        report.add_plan(planned)
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
        # Once per run, not per batch: a failure held back at a batch's end is judged by the
        # next batch's outcomes, so that a relay going bad near a boundary suppresses nobody.
        await self.settle(report)

    async def send_batch(self, batch: Sequence[Claimed], report: DispatchReport) -> None:
        """Send rows claimed elsewhere (by `digest worker`) and record each outcome."""
        await self._send_batch(batch, report)

    def close_editions(self) -> None:
        self._close_editions()

    async def settle(self, report: DispatchReport) -> None:
        """The run ended: record the permanent failures the breaker still holds back, or, if
        it trips on them (`Breaker.settle`), give their rows back, hold their editions and
        raise BreakerTripped."""
        breaker = self.breaker
        ready = breaker.settle()
        if breaker.trip is not None:
            raise await asyncio.to_thread(
                halt,
                self.engine,
                breaker.trip,
                held_back=breaker.held_back(),
                unsent=[],
                where=self.options.breaker.where,
                now=self.clock(),
            )
        if not ready:
            return
        recorder = Recorder(self.engine, self.options.policy, self.options.record)
        recorder.start()
        try:
            for attempt in ready:
                recorder.submit(attempt)
        finally:
            try:
                await asyncio.to_thread(recorder.close)
            finally:
                report.add_recorded(recorder.recorded)

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
        recorder = Recorder(self.engine, self.options.policy, self.options.record)
        breaker = self.breaker
        failed = False

        async def worker() -> None:
            nonlocal failed
            try:
                while not failed and breaker.trip is None:
                    if recorder.full():  # the database is behind: no more unrecorded sends
                        await asyncio.to_thread(recorder.wait_for_room)
                    recorder.check()  # recording has failed: send no more of this batch
                    if queue.empty():
                        return
                    # The breaker holds back permanent failures until it is sure of them.
                    for ready in breaker.observe(await self._attempt(queue.get_nowait())):
                        recorder.submit(ready)
            except BaseException:
                failed = True  # the other workers finish their message and take no more
                raise

        recorder.start()
        try:
            # Every worker ends (each with its message recorded) before the recorder closes:
            # the first error is raised only then, so no outcome is dropped.
            workers = (worker() for _ in range(max(1, self.options.concurrency)))
            results = await asyncio.gather(*workers, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                breaker.held_back()  # not recorded: their rows stay `sending`, sent again later
                raise errors[0]
            # What is still held waits for the next batch's outcomes (`settle`: end of run).
        finally:
            try:  # commits what is left, off the event loop; raises if recording failed
                await asyncio.to_thread(recorder.close)
            finally:
                report.add_recorded(recorder.recorded)
        if breaker.trip is not None:
            unsent = [queue.get_nowait() for _ in range(queue.qsize())]
            raise await asyncio.to_thread(
                halt,
                self.engine,
                breaker.trip,
                held_back=breaker.held_back(),
                unsent=unsent,
                where=self.options.breaker.where,
                now=self.clock(),
            )

    async def _attempt(self, item: Claimed) -> Attempt:
        try:
            return await self._deliver(item)
        except InvalidInput as exc:  # e.g. an address that cannot go into a header
            return Attempt(item, Outcome("permanent", None, f"not sendable: {exc}"), self.clock())

    async def _deliver(self, item: Claimed) -> Attempt:
        compiled = self._compile(item)
        tokens = tokens_for(
            self.signer, subscriber_id=item.subscriber_id, list_id=item.list_id, delivery_id=item.id
        )
        values = compiled.digest.slot_values(Recipient.with_tokens(item.name, tokens))
        named = self.addresses.of(item.id, tokens.unsubscribe)
        parts = MessageParts(
            to_address=item.email,
            to_name=item.name,
            html=b"",
            text=b"",
            unsubscribe_url=values.unsubscribe_url,
            unsubscribe_mailto=named.unsubscribe_mailto,
            message_id=named.message_id,
        )
        eight_bit = compiled.eight_bit() if self.sender.eight_bit else None
        body = None if eight_bit is None else eight_bit.fill(values.text, values.html)
        if body is None:  # base64
            parts = replace(
                parts, html=compiled.html.fill(values.html), text=compiled.text.fill(values.text)
            )
        data, wire = await compiled.template.build_off_loop(parts, body)
        envelope = Envelope(named.envelope_sender, item.email, data, body is not None, wire)
        outcome = await self.sender.send(envelope)
        return Attempt(item, outcome, self.clock(), named.message_id, compiled.digest.article_ids)

    def _compile(self, item: Claimed) -> _CompiledSegment:
        key = item.segment_key
        found = self._compiled.get(key)
        if found is not None:
            return found
        self._load_topics()
        controls = self._controls(item.edition_id)
        # The same segment as "view in browser" rebuilds from the delivery row.
        issue = Issue.of(
            self.mailing_list,
            item.local_date,
            item.locale,
            tracking=self.options.tracking,
            controls=controls,
        )
        segment = build_segment(
            issue, item.article_ids, self._articles, item.topic_ids, self._topics
        )
        digest = self.renderer.compile_digest(segment)
        store_links(self.engine, digest.links, self.clock())
        shared = SharedHeaders(
            list_name=self.mailing_list.name,
            list_slug=self.mailing_list.slug,
            subject=digest.subject,
            locale=item.locale,
            campaign=f"edition{item.edition_id}",
            stream=self.mailing_list.cadence,
        )
        template = MessageTemplate(self.options.sender, shared, self.dkim)
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

    def _load_topics(self) -> None:
        if not self._topics:
            with self.engine.connect() as connection:
                self._topics = topic_views(connection)

    def _load_articles(self, ids: set[int]) -> None:
        missing = ids - self._articles.keys()
        if not missing:
            return
        self._load_topics()
        with self.engine.connect() as connection:
            self._articles.update(article_views(connection, missing, self._topics))

    def _close_editions(self) -> None:
        """Editions of this list with nothing left to send or retry are `sent`."""
        with self.engine.begin() as connection:
            finish_sent(connection, self.mailing_list.id or 0)
