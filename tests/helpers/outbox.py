"""A list with readers due now and one article, planned into the outbox (send tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.db.models import Delivery
from digest.selection.due import PlanRequest, Selection, select_due
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def due_world(engine: Engine, session: Session, n: int = 3) -> tuple[World, Selection]:
    """`n` readers of politics (r0@, r1@, ...) and one of sports, an article in politics:
    what is due at NOW (the sports reader has nothing new)."""
    world = make_world(session)
    for i in range(n):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_reader(session, world, "nothing@example.org", ["sports"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    return world, due_now(engine, world)


def due_now(engine: Engine, world: World) -> Selection:
    with engine.connect() as connection:
        return select_due(connection, world.daily, PlanRequest(now=NOW, max_articles=20))


def statuses(session: Session) -> dict[int, str]:
    """Each subscriber's delivery status."""
    session.expire_all()
    return {d.subscriber_id: d.status for d in session.exec(select(Delivery))}
