"""The edition state machine (digest/editions/states.py): allowed moves, and the sending
side's transitions in SQL (planning starts an edition, finishing sends it)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.db.models import Delivery, Edition, EditionStatus
from digest.editions import states
from subscribers.models import Subscriber
from tests.helpers.world import add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
DAY, NEXT = date(2026, 11, 29), date(2026, 11, 30)


def test_every_transition_checks_where_it_starts() -> None:
    assert states.move("draft", states.APPROVE) == EditionStatus.APPROVED
    assert states.move("held", states.RESUME) == EditionStatus.SENDING
    assert states.move("sent", states.PLAN) == EditionStatus.SENDING  # a later time zone
    with pytest.raises(states.NotAllowed, match="cannot approve an edition that is sending"):
        states.move("sending", states.APPROVE)
    with pytest.raises(states.NotAllowed):
        states.move("held", states.PLAN)  # a held edition stays held
    with pytest.raises(states.NotAllowed):
        states.move("held", states.HOLD)
    reachable = {t.target for t in states.TRANSITIONS}
    assert reachable == set(EditionStatus)


def _editions(session: Session) -> dict[date, str]:
    session.expire_all()
    return {e.local_date: e.status for e in session.exec(select(Edition))}


def test_planning_starts_sending_editions_and_leaves_held_ones_alone(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    list_id = world.daily.id or 0
    held = Edition(list_id=list_id, local_date=NEXT, status="held")
    session.add(held)
    session.commit()
    with engine.begin() as connection:
        ids = states.start_sending(connection, list_id, [DAY, NEXT], NOW)
    assert set(ids) == {DAY, NEXT}
    assert _editions(session) == {DAY: "sending", NEXT: "held"}
    waiting = date(2026, 12, 1)
    with engine.begin() as connection:
        states.start_sending(connection, list_id, [DAY], NOW, drafts=[waiting])
    assert _editions(session)[waiting] == "draft"  # due, but waits for an editor


def test_an_edition_is_sent_once_nothing_is_left_to_send_or_retry(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    list_id = world.daily.id or 0
    with engine.begin() as connection:
        ids = states.start_sending(connection, list_id, [DAY], NOW)
    add_reader(session, world, "a@example.org", ["politics"])
    reader = session.exec(select(Subscriber)).one()
    delivery = Delivery(
        edition_id=ids[DAY],
        list_id=list_id,
        subscriber_id=reader.id or 0,
        status="failed_temporary",
        window_start=NOW,
        window_end=NOW,
    )
    session.add(delivery)
    session.commit()
    with engine.begin() as connection:
        assert states.finish_sent(connection, list_id) == 0  # a retry is still to come
    delivery.status = "sent"
    session.add(delivery)
    session.commit()
    with engine.begin() as connection:
        assert states.finish_sent(connection, list_id) == 1
    assert _editions(session) == {DAY: "sent"}
