"""Claiming (digest/send/claim.py): rows move to `sending` once, left readers are skipped."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.db.models import Delivery, Edition
from digest.send.claim import claim, release_orphans, requeue
from digest.send.plan import plan
from subscribers.models import Subscriber
from subscribers.people import unsubscribe
from tests.helpers.outbox import NOW, due_world, statuses


def test_a_claim_takes_each_row_once_and_orphans_go_back_to_the_queue(
    engine: Engine, session: Session
) -> None:
    _, selection = due_world(engine, session)
    plan(engine, selection, NOW)
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    assert len(batch) == 3 and all(c.attempts == 1 for c in batch)
    assert sorted(statuses(session).values()) == ["sending"] * 3 + ["skipped"]
    assert claim(engine, list_id=selection.list_id, now=NOW, limit=10) == []
    assert release_orphans(engine, selection.list_id) == 3  # a crash left them in flight
    again = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    assert sorted(c.id for c in again) == sorted(c.id for c in batch)
    assert all(c.attempts == 2 for c in again)


def test_requeued_rows_come_back_untouched(engine: Engine, session: Session) -> None:
    _, selection = due_world(engine, session, n=2)
    plan(engine, selection, NOW)
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    requeue(engine, [c.id for c in batch])  # e.g. a template that does not compile
    again = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    assert sorted(c.id for c in again) == sorted(c.id for c in batch)
    assert all(c.attempts == 1 for c in again)


def test_a_held_edition_sends_nothing(engine: Engine, session: Session) -> None:
    _, selection = due_world(engine, session)
    plan(engine, selection, NOW)
    edition = session.exec(select(Edition)).one()
    edition.status = "held"
    session.add(edition)
    session.commit()
    assert claim(engine, list_id=selection.list_id, now=NOW, limit=10) == []


def test_a_failed_retry_is_not_claimed_again_before_its_time(
    engine: Engine, session: Session
) -> None:
    _, selection = due_world(engine, session, n=1)
    plan(engine, selection, NOW)
    (item,) = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    row = session.get(Delivery, item.id)
    assert row is not None
    row.status, row.next_attempt_at = "failed_temporary", NOW + timedelta(minutes=10)
    session.add(row)
    session.commit()
    assert claim(engine, list_id=selection.list_id, now=NOW + timedelta(minutes=9), limit=10) == []
    (again,) = claim(engine, list_id=selection.list_id, now=NOW + timedelta(minutes=11), limit=10)
    assert (again.id, again.attempts) == (item.id, 2)


def test_unsubscribed_after_planning_is_not_sent(engine: Engine, session: Session) -> None:
    _, selection = due_world(engine, session)
    plan(engine, selection, NOW)
    unsubscribe(session, "r1@example.org")
    session.commit()
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    assert sorted(c.email for c in batch) == ["r0@example.org", "r2@example.org"]
    session.expire_all()
    skipped = [
        d for d in session.exec(select(Delivery)) if d.smtp_message == "unsubscribed before sending"
    ]
    assert len(skipped) == 1 and skipped[0].status == "skipped"


def test_a_batch_whose_rows_all_left_is_not_the_end_of_the_queue(
    engine: Engine, session: Session
) -> None:
    # The first 4 rows of the queue unsubscribed since planning: a claim of 3 skips them all
    # and goes on to the next rows instead of saying "nothing left".
    _, selection = due_world(engine, session, n=6)
    plan(engine, selection, NOW)
    first = [d.subscriber_id for d in session.exec(select(Delivery).order_by(Delivery.id))][:4]
    left = {s.email for s in session.exec(select(Subscriber)) if s.id in first}
    for email in left:
        unsubscribe(session, email)
    session.commit()
    skipped: list[int] = []
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=3, on_skipped=skipped.append)
    sendable = {f"r{i}@example.org" for i in range(6)} - left
    assert batch and {c.email for c in batch} <= sendable
    rest = claim(engine, list_id=selection.list_id, now=NOW, limit=3)
    assert {c.email for c in batch + rest} == sendable
    assert claim(engine, list_id=selection.list_id, now=NOW, limit=3) == []
    assert sum(skipped) >= 3
