"""The subscription request queue: one request leased at a time, from the clock at the claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from subscribers.lists import ListSpec, create_list
from subscribers.models import SubscriptionRequest
from subscribers.people import Consent, Person
from subscribers.requests import LEASE, claim_due, enqueue

PASS = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_a_worker_leases_one_request_at_a_time_from_the_clock_at_the_claim(
    session: Session,
) -> None:
    # Twenty leased together ran out while a slow relay took the first ones, and another
    # worker mailed the rest again (a new nonce: the first link stopped working).
    weekly = create_list(session, ListSpec(slug="weekly", name="Weekly"))
    for n in range(3):
        enqueue(session, Person(f"p{n}@example.org", "UTC"), weekly.id or 0, Consent(), PASS)
    session.commit()
    later = PASS + timedelta(minutes=9)  # the pass began at PASS; the relay was slow
    first = claim_due(session, PASS)
    second = claim_due(session, PASS, leased_at=later)
    session.commit()
    assert [q.person.email for q in first + second] == ["p0@example.org", "p1@example.org"]
    leases = session.exec(
        select(SubscriptionRequest.next_attempt_at).order_by(col(SubscriptionRequest.id))
    ).all()
    assert leases == [PASS + LEASE, later + LEASE, PASS]  # the third still waits, unleased
