"""The worker of the subscription request queue: decide what each request means, mail the
confirmation, and keep the request for later while the relay cannot take it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import session_scope
from digest.errors import DigestError
from digest.render.renderer import Renderer
from digest.send.confirmations import confirmation_envelope
from digest.send.outcome import Outcome, Sender
from subscribers.consent import Request, mark_sent, request_subscription
from subscribers.models import MailingList
from subscribers.requests import Queued, claim_due, finish, retry_later

log = logging.getLogger(__name__)
MAX_RETRY = timedelta(hours=1)


@dataclass(frozen=True)
class QueueOptions:
    """How the worker paces confirmations (from `[web]` and `[smtp]`)."""

    cooldown: timedelta
    retry: timedelta  # the first retry; each further one waits twice as long, up to an hour
    deadline: timedelta  # a request the relay never took is dropped (logged) after this

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueOptions:
        web = settings.web
        return cls(
            cooldown=timedelta(minutes=web.confirm_cooldown_minutes),
            retry=timedelta(seconds=web.confirm_retry_seconds),
            deadline=timedelta(hours=settings.smtp.retry_deadline_hours),
        )


@dataclass
class Tally:
    """What one pass over the queue did."""

    sent: int = 0
    skipped: int = 0  # nothing to mail: active, suppressed, cooldown, list gone
    retried: int = 0
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueWorker:
    """Takes due requests and mails their confirmations with a sender of its own."""

    engine: Engine
    settings: Settings
    sender_factory: Callable[[], Sender]
    renderer: Renderer | None = None
    clock: Callable[[], datetime] = utcnow  # the lease runs from the claim, not the pass

    async def run_once(self, now: datetime) -> Tally:
        """One pass: every request due at `now` (one claimed at a time) is dealt with."""
        tally = Tally()
        options = QueueOptions.from_settings(self.settings)
        while True:
            batch = await asyncio.to_thread(self._claim, now)
            if not batch:
                return tally
            for queued in batch:
                await self._deliver(queued, options, now, tally)

    def _claim(self, now: datetime) -> list[Queued]:
        """The next due request (one: see `claim_due`), leased from the clock as it is now."""
        with session_scope(self.engine) as session:
            return claim_due(session, now, limit=1, leased_at=self.clock())

    async def _deliver(
        self, queued: Queued, options: QueueOptions, now: datetime, tally: Tally
    ) -> None:
        try:
            request = await asyncio.to_thread(_decide, self.engine, queued, options, now)
        except SQLAlchemyError:
            log.exception("subscription request %s kept for later", queued.id)
            await asyncio.to_thread(self._later, queued, options, now)
            tally.retried += 1
            return
        if request is None or not request.send_confirmation:
            tally.skipped += 1
            tally.reasons.append(request.reason if request else "gone")
            await asyncio.to_thread(self._done, queued.id, None, now)
            return
        outcome = await self._send(request, queued, now)
        if outcome.status == "sent":
            tally.sent += 1
            await asyncio.to_thread(self._done, queued.id, request, now)
        elif outcome.status == "temporary" or outcome.blame == "sender":
            log.warning("confirmation not sent yet: %s %r", outcome.code, outcome.message)
            tally.retried += 1
            await asyncio.to_thread(self._later, queued, options, now)
        else:
            log.warning("confirmation refused: %s %r", outcome.code, outcome.message)
            tally.dropped += 1
            await asyncio.to_thread(self._done, queued.id, None, now)

    async def _send(self, request: Request, queued: Queued, now: datetime) -> Outcome:
        try:
            envelope = await asyncio.to_thread(
                lambda: confirmation_envelope(
                    self.engine,
                    self.settings,
                    subscriber_id=request.subscriber_id,
                    list_id=request.list_id,
                    renderer=self.renderer,
                    now=now,
                    source=queued.consent.source,
                )
            )
            async with self.sender_factory() as sender:
                return await sender.send(envelope)
        except (DigestError, OSError, SQLAlchemyError) as exc:  # the relay is down: later
            return Outcome("temporary", None, str(exc))

    def _done(self, request_id: int, sent: Request | None, now: datetime) -> None:
        with session_scope(self.engine) as session:
            if sent is not None:
                mark_sent(session, sent.subscriber_id, sent.list_id, now)
            finish(session, request_id)

    def _later(self, queued: Queued, options: QueueOptions, now: datetime) -> None:
        wait = min(options.retry * (2**queued.attempts), MAX_RETRY)
        with session_scope(self.engine) as session:
            if queued.attempts and now + wait > queued.requested_at + options.deadline:
                log.warning("subscription request %s dropped: the relay never took it", queued.id)
                finish(session, queued.id)
            else:
                retry_later(session, queued.id, now + wait)


def _decide(engine: Engine, queued: Queued, options: QueueOptions, now: datetime) -> Request | None:
    """What the request means (None: its list is gone or takes no public requests)."""
    with session_scope(engine) as session:
        mailing_list = session.get(MailingList, queued.list_id)
        if mailing_list is None or not mailing_list.double_opt_in:
            return None
        try:
            return request_subscription(
                session,
                queued.person,
                mailing_list,
                consent=queued.consent,
                cooldown=options.cooldown,
                now=now,
            )
        except DigestError as exc:  # e.g. a time zone no longer known: nothing to do
            log.warning("subscription request %s dropped: %s", queued.id, exc)
            return None
