"""The outbox: planning is idempotent, claims move rows to sending, outcomes are recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.db.models import Delivery, Edition
from digest.selection.due import select_due
from digest.send.outbox import (
    Claimed,
    OutcomeNotRecorded,
    Recorder,
    Result,
    claim,
    plan,
    release_orphans,
)
from digest.send.outcome import RetryPolicy
from subscribers.models import Subscriber, Suppression
from subscribers.people import unsubscribe
from tests.helpers.world import add_article, add_reader, make_world

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


def test_a_batch_whose_rows_all_left_is_not_the_end_of_the_queue(
    engine: Engine, session: Session
) -> None:
    # The first 4 rows of the queue unsubscribed since planning: a claim of 3 skips them all
    # and goes on to the next rows instead of saying "nothing left".
    _, selection = _planned(engine, session, n=6)
    plan(engine, selection, NOW)
    first = [d.subscriber_id for d in session.exec(select(Delivery).order_by(Delivery.id))][:4]
    left = {s.email for s in session.exec(select(Subscriber)) if s.id in first}
    for email in left:
        unsubscribe(session, email)
    session.commit()
    batch = claim(engine, list_id=selection.list_id, now=NOW, limit=3)
    sendable = {f"r{i}@example.org" for i in range(6)} - left
    assert batch and {c.email for c in batch} <= sendable
    rest = claim(engine, list_id=selection.list_id, now=NOW, limit=3)
    assert {c.email for c in batch + rest} == sendable
    assert claim(engine, list_id=selection.list_id, now=NOW, limit=3) == []


def _unreachable(times: int) -> Callable[[Recorder, Claimed, Result, datetime], str]:
    """The recorder's writes, failing `times` times as during a database restart."""
    real = Recorder._commit
    left = [times]

    def commit(recorder: Recorder, claimed: Claimed, result: Result, now: datetime) -> str:
        if left[0] > 0:
            left[0] -= 1
            raise OperationalError("UPDATE delivery", {}, Exception("server closed the connection"))
        return real(recorder, claimed, result, now)

    return commit


def test_an_outcome_is_recorded_once_the_database_is_back(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, selection = _planned(engine, session, n=2)
    plan(engine, selection, NOW)
    first, second = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    recorder = Recorder(engine, RetryPolicy())
    monkeypatch.setattr(Recorder, "_commit", _unreachable(2))
    with recorder.connected():  # cut off twice, then back
        done = Result(first.id, "sent", 250, "ok", "<m1@x>", first.email)
        assert recorder.record(first, done, NOW) == "sent"
        assert recorder.record(second, Result(second.id, "sent", 250, "ok", None, ""), NOW)
    assert sorted(_statuses(session).values()) == ["sent", "sent", "skipped"]


def test_an_outcome_that_cannot_be_recorded_leaves_the_row_sending(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database stays away longer than the recorder waits: the row is not marked sent,
    # nor unsent: it stays `sending`, to be claimed again; the rest of the batch gives up
    # at once instead of waiting again for each message.
    _, selection = _planned(engine, session, n=2)
    plan(engine, selection, NOW)
    first, second = claim(engine, list_id=selection.list_id, now=NOW, limit=10)
    recorder = Recorder(engine, RetryPolicy())
    recorder.patience = 0.3
    monkeypatch.setattr(Recorder, "_commit", _unreachable(1_000))
    with recorder.connected():
        started = time.monotonic()
        with pytest.raises(OutcomeNotRecorded, match="stays `sending`"):
            recorder.record(first, Result(first.id, "sent", 250, "ok", None, first.email), NOW)
        assert 0.1 <= time.monotonic() - started < 2  # retried, within its patience
        started = time.monotonic()
        with pytest.raises(OutcomeNotRecorded):
            recorder.record(second, Result(second.id, "sent", 250, "ok", None, ""), NOW)
        assert time.monotonic() - started < 0.1
    assert sorted(_statuses(session).values()) == ["sending", "sending", "skipped"]
    assert release_orphans(engine, selection.list_id) == 2  # the next send takes them again


def _rows(session: Session) -> set[tuple[object, ...]]:
    session.expire_all()
    return {
        (
            d.edition_id,
            d.subscriber_id,
            d.status,
            d.window_start,
            d.window_end,
            d.locale,
            tuple(d.topic_ids),
            tuple(d.article_ids),
            d.smtp_message,
        )
        for d in session.exec(select(Delivery))
    }


def test_planning_in_batches_writes_what_planning_at_once_writes(
    engine: Engine, session: Session
) -> None:
    from digest.selection.due import due_in_batches
    from digest.send.outbox import plan_batches

    world, selection = _planned(engine, session, n=7)
    add_reader(session, world, "en@example.org", ["politics"], locale="en")
    whole = select_due_now(engine, world)
    at_once = plan(engine, whole, NOW)
    expected = _rows(session)
    session.exec(Delivery.__table__.delete())  # type: ignore[attr-defined]
    session.commit()
    batches = due_in_batches(engine, world.daily, now=NOW, max_articles=20, batch_size=3)
    planned = plan_batches(engine, batches, NOW)
    assert _rows(session) == expected
    assert (planned.queued, planned.skipped_empty, planned.already_planned) == (
        at_once.queued,
        at_once.skipped_empty,
        0,
    )
    assert (planned.due, planned.segments) == (9, 2)  # Arabic and English: one segment each
    # The same batches again (a second planner): nothing new, all counted as planned before.
    again = plan_batches(engine, [selection, whole], NOW)
    assert (again.queued, again.already_planned) == (0, 8 + 9)
    assert len(_rows(session)) == 9


def select_due_now(engine: Engine, world):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return select_due(connection, world.daily, now=NOW, max_articles=20)


def test_planning_stores_text_as_given(engine: Engine, session: Session) -> None:
    # PostgreSQL gets each column as an array literal: quotes and backslashes survive it.
    world, _ = _planned(engine, session, n=1)
    reader = session.exec(select(Subscriber).where(Subscriber.email == "r0@example.org")).one()
    reader.locale = 'a"b\\c,{}'
    session.add(reader)
    session.commit()
    plan(engine, select_due_now(engine, world), NOW)
    assert {row[5] for row in _rows(session)} == {"ar", 'a"b\\c,{}'}


def test_a_failing_batch_stops_planning_and_keeps_the_earlier_ones(
    engine: Engine, session: Session
) -> None:
    from digest.send.outbox import plan_batches

    _, selection = _planned(engine, session, n=2)

    def batches():  # type: ignore[no-untyped-def]
        yield selection
        raise OperationalError("SELECT", {}, Exception("database went away"))

    with pytest.raises(OperationalError):
        plan_batches(engine, batches(), NOW)
    assert len(_rows(session)) == 3  # the first batch is planned; the next run does the rest
