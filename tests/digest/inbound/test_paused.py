"""The brake's mark: an edition is paused by the brake while held by its latest hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from digest.db.models import EditionStatus, EditorAction
from digest.editions import workflow
from digest.editions.states import hold_sending
from digest.inbound.brake import ACTOR
from digest.inbound.paused import brake_pause
from tests.helpers.returns import sent_edition

T = datetime(2026, 11, 29, 6, tzinfo=UTC)
HELD = EditionStatus.HELD.value


def _action(actor: str, action: str, minutes: int, detail: str = "") -> EditorAction:
    return EditorAction(edition_id=1, actor=actor, action=action, detail=detail,
                        at=T + timedelta(minutes=minutes))  # fmt: skip


def test_only_a_held_edition_whose_last_hold_is_the_brakes() -> None:
    brake = _action(ACTOR, "hold", 1, "hard-bounce rate 9.00% (9 of 100 sent) is over 5.00%")
    paused = brake_pause(1, HELD, [_action("reem", "approve", 0), brake])
    assert paused is not None and paused.at == brake.at
    assert paused.line() == (
        "paused by the bounce brake: hard-bounce rate 9.00% (9 of 100 sent) is over 5.00%; "
        "release with digest editions release 1"
    )
    assert paused.as_dict()["release"] == "digest editions release 1"
    assert brake_pause(1, "sending", [brake]) is None  # released since
    assert brake_pause(1, HELD, [brake, _action("reem", "release", 2),
                                 _action("reem", "hold", 3)]) is None  # fmt: skip
    assert brake_pause(1, HELD, [_action("breaker", "hold", 1)]) is None  # the send breaker
    assert brake_pause(1, HELD, []) is None


def test_hostile_detail_is_one_clean_line() -> None:
    paused = brake_pause(1, HELD, [_action(ACTOR, "hold", 0, "a\nb\x1b[2J\u202e")])
    assert paused is not None and paused.detail == "a b[2J"
    empty = brake_pause(1, HELD, [_action(ACTOR, "hold", 0)])
    assert empty is not None and "bounce or complaint rate too high" in empty.line()


def test_a_hold_written_by_the_brake_is_read_back(engine: Engine, session: Session) -> None:
    sent = sent_edition(engine, session)
    edition_id = sent.edition_id
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE edition SET status = 'sending' WHERE id = {edition_id}")
        held = hold_sending(connection, [edition_id], actor=ACTOR, detail="too many", now=T)
    assert held == [edition_id]
    session.expire_all()
    history = workflow.actions(session, edition_id)
    edition = workflow.get_edition(session, edition_id)
    paused = brake_pause(edition_id, edition.status, history)
    assert paused is not None and paused.detail == "too many"
    workflow.release(session, edition_id, actor="reem", now=T + timedelta(hours=1))
    session.commit()
    edition = workflow.get_edition(session, edition_id)
    assert brake_pause(edition_id, edition.status, workflow.actions(session, edition_id)) is None
