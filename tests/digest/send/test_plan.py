"""Planning (digest/send/plan.py): one row per due reader, twice is a no-op, batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.db.models import Delivery, Edition
from digest.selection.due import PlanRequest, Selection, due_in_batches
from digest.send.plan import plan, plan_batches
from subscribers.models import Subscriber
from tests.helpers.outbox import NOW, due_now, due_world, statuses
from tests.helpers.world import add_reader


def test_plan_twice_is_a_no_op(engine: Engine, session: Session) -> None:
    _, selection = due_world(engine, session)
    first = plan(engine, selection, NOW)
    second = plan(engine, selection, NOW)
    assert (first.queued, first.skipped_empty, first.already_planned) == (3, 1, 0)
    assert (second.queued, second.already_planned) == (0, 4)
    assert sorted(statuses(session).values()) == ["queued", "queued", "queued", "skipped"]
    editions = session.exec(select(Edition)).all()
    assert [e.status for e in editions] == ["sending"]


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
    world, selection = due_world(engine, session, n=7)
    add_reader(session, world, "en@example.org", ["politics"], locale="en")
    whole = due_now(engine, world)
    at_once = plan(engine, whole, NOW)
    expected = _rows(session)
    session.exec(Delivery.__table__.delete())  # type: ignore[attr-defined]
    session.commit()
    batches = due_in_batches(
        engine, world.daily, PlanRequest(now=NOW, max_articles=20), batch_size=3
    )
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


def test_planning_stores_text_as_given(engine: Engine, session: Session) -> None:
    # PostgreSQL gets each column as an array literal: quotes and backslashes survive it.
    world, _ = due_world(engine, session, n=1)
    reader = session.exec(select(Subscriber).where(Subscriber.email == "r0@example.org")).one()
    reader.locale = 'a"b\\c,{}'
    session.add(reader)
    session.commit()
    plan(engine, due_now(engine, world), NOW)
    assert {row[5] for row in _rows(session)} == {"ar", 'a"b\\c,{}'}


def test_a_failing_batch_stops_planning_and_keeps_the_earlier_ones(
    engine: Engine, session: Session
) -> None:
    _, selection = due_world(engine, session, n=2)

    def batches() -> Iterator[Selection]:
        yield selection
        raise OperationalError("SELECT", {}, Exception("database went away"))

    with pytest.raises(OperationalError):
        plan_batches(engine, batches(), NOW)
    assert len(_rows(session)) == 3  # the first batch is planned; the next run does the rest
