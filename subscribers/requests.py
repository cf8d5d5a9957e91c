"""The queue of public subscription requests: stored as typed, taken by one worker at a time.

The form's handler only appends a row (the same write whatever the address), so the answer
tells nobody whether the address is known; a worker takes due rows with a lease, decides
what each means (`subscribers.consent.request_subscription`) and mails the confirmation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from digest.text.controls import clean_line
from subscribers.models import SubscriptionRequest
from subscribers.people import Consent, Person

LEASE = timedelta(minutes=5)  # a worker that died holding a row leaves it to another after this


@dataclass(frozen=True)
class Queued:
    """A request taken from the queue: who, for which list, asked from where."""

    id: int
    list_id: int
    person: Person
    consent: Consent
    attempts: int
    requested_at: datetime


def enqueue(
    session: Session, person: Person, list_id: int, consent: Consent, now: datetime
) -> None:
    """Queue one request (already checked for shape) for the worker."""
    session.add(
        SubscriptionRequest(
            email=person.email[:320],
            name=clean_line(person.name)[:200],
            list_id=list_id,
            locale=person.locale[:8],
            timezone=person.timezone[:64],
            source=consent.source[:32],
            ip=(consent.ip or "")[:64] or None,
            user_agent=(consent.user_agent or "")[:512] or None,
            consent_version=consent.version[:32],
            requested_at=now,
            next_attempt_at=now,
        )
    )


def claim_due(
    session: Session, now: datetime, limit: int = 1, *, leased_at: datetime | None = None
) -> list[Queued]:
    """Due requests, oldest first, each leased to this caller (another worker skips them).

    A worker takes one at a time, right before handling it: a lease taken for a batch runs
    out while a slow relay takes the earlier ones, and another worker would mail the later
    ones again (a new nonce, so the first link stops working). The lease runs from
    `leased_at` (the clock at the claim) when that is later than `now` (when the pass began)."""
    lease_end = max(now, leased_at or now) + LEASE
    due: Sequence[SubscriptionRequest] = session.exec(
        select(SubscriptionRequest)
        .where(col(SubscriptionRequest.next_attempt_at) <= now)
        .order_by(col(SubscriptionRequest.next_attempt_at), col(SubscriptionRequest.id))
        .limit(limit)
    ).all()
    taken = []
    for row in due:
        leased = session.execute(
            update(SubscriptionRequest)
            .where(col(SubscriptionRequest.id) == row.id)
            .where(col(SubscriptionRequest.next_attempt_at) == row.next_attempt_at)
            .values(next_attempt_at=lease_end)
        )
        if leased.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(_queued(row))
    return taken


def _queued(row: SubscriptionRequest) -> Queued:
    # The form checked the address against the settings when it queued it.
    person = Person(row.email, row.timezone, name=row.name, locale=row.locale, smtputf8=True)
    consent = Consent(row.source, row.ip, row.user_agent, row.consent_version)
    return Queued(row.id or 0, row.list_id, person, consent, row.attempts, row.requested_at)


def finish(session: Session, request_id: int) -> None:
    """The request is dealt with (mailed or nothing to mail): it leaves the queue."""
    session.execute(delete(SubscriptionRequest).where(col(SubscriptionRequest.id) == request_id))


def retry_later(session: Session, request_id: int, at: datetime) -> None:
    """The relay could not take the confirmation: try again at `at`."""
    session.execute(
        update(SubscriptionRequest)
        .where(col(SubscriptionRequest.id) == request_id)
        .values(next_attempt_at=at, attempts=SubscriptionRequest.attempts + 1)
    )


def waiting(session: Session) -> int:
    """How many requests wait in the queue (for operators and tests)."""
    return len(session.exec(select(SubscriptionRequest.id)).all())
