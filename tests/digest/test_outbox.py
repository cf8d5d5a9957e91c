"""The outbox: planning is idempotent, claims move rows to sending, outcomes are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.models import Delivery, Edition
from digest.outbox import Recorder, Result, claim, plan, release_orphans
from digest.select import select_due
from digest.send import RetryPolicy
from subscribers.models import Suppression
from subscribers.people import unsubscribe
from tests.digest.dispatch_fixtures import add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


class FixedDelay(RetryPolicy):
    """A policy without jitter: `base` times the attempt number."""

    def delay(self, attempt: int, rng: object = None) -> timedelta:  # type: ignore[override]
        return self.base * attempt


def _planned(engine: Engine, session: Session, n: int = 3):  # type: ignore[no-untyped-def]
    world = make_world(session)
    for i in range(n):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_reader(session, world, "nothing@example.org", ["sports"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    with engine.connect() as connection:
        selection = select_due(connection, world.daily, now=NOW, max_articles=20)
    return world, selection


def _statuses(session: Session) -> dict[int, str]:
    session.expire_all()
    return {d.subscriber_id: d.status for d in session.exec(select(Delivery))}


def test_plan_twice_is_a_no_op(engine: Engine, session: Session) -> None:
    _, selection = _planned(engine, session)
    first = plan(engine, selection, NOW)
    second = plan(engine, selection, NOW)
    assert (first.queued, first.skipped_empty, first.already_planned) == (3, 1, 0)
    assert (second.queued, second.already_planned) == (0, 4)
    assert sorted(_statuses(session).values()) == ["queued", "queued", "queued", "skipped"]
    assert len(session.exec(select(Edition)).all()) == 1


def test_claim_orphans_and_outcomes(engine: Engine, session: Session) -> None:
    _, selection = _planned(engine, session)
    plan(engine, selection, NOW)
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    assert len(batch) == 3 and all(c.attempts == 1 for c in batch)
    assert claim(engine, list_id=selection.list_id, now=NOW, limit=10) == []
    assert release_orphans(engine, selection.list_id) == 3  # a crash left them in flight
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    recorder = Recorder(engine, FixedDelay(timedelta(minutes=5), deadline=timedelta(hours=6)))
    sent, later, bounced = batch
    assert (
        recorder.record(sent, Result(sent.id, "sent", 250, "ok", "<m1@x>", sent.email), NOW)
        == "sent"
    )
    assert (
        recorder.record(
            later, Result(later.id, "temporary", 451, "try later", "<m2@x>", later.email), NOW
        )
        == "failed_temporary"
    )
    assert (
        recorder.record(
            bounced,
            Result(
                bounced.id,
                "permanent",
                550,
                "5.1.1 no such user",
                "<m3@x>",
                bounced.email,
                hard_bounce=True,
            ),
            NOW,
        )
        == "failed_permanent"
    )
    session.expire_all()
    assert [s.email for s in session.exec(select(Suppression))] == [bounced.email]
    retry = session.get(Delivery, later.id)
    # second attempt (the first was lost in the crash): 5 min x 2
    assert retry is not None and retry.next_attempt_at == NOW + timedelta(minutes=10)
    # The retry is not due before its time, then it is claimed again.
    assert claim(engine, list_id=selection.list_id, now=NOW + timedelta(minutes=9), limit=10) == []
    (again,) = claim(engine, list_id=selection.list_id, now=NOW + timedelta(minutes=11), limit=10)
    assert (again.id, again.attempts) == (later.id, 3)


def test_retries_stop_at_the_deadline(engine: Engine, session: Session) -> None:
    _, selection = _planned(engine, session, n=1)
    plan(engine, selection, NOW)
    (item,) = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    recorder = Recorder(engine, FixedDelay(timedelta(hours=2), deadline=timedelta(hours=1)))
    status = recorder.record(item, Result(item.id, "temporary", 421, "busy", None, item.email), NOW)
    assert status == "failed_temporary"  # the last retry is moved to the deadline itself
    (item,) = claim(engine, list_id=selection.list_id, now=NOW + timedelta(hours=1), limit=10)
    status = recorder.record(
        item, Result(item.id, "temporary", 421, "busy", None, item.email), NOW + timedelta(hours=1)
    )
    assert status == "failed_permanent"
    session.expire_all()
    row = session.get(Delivery, item.id)
    assert row is not None and row.smtp_message.startswith("gave up after 2 attempts")
    assert session.exec(select(Suppression)).all() == []  # a timeout is not a bounce


def test_unsubscribed_after_planning_is_not_sent(engine: Engine, session: Session) -> None:
    _, selection = _planned(engine, session)
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
