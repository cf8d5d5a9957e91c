"""The housekeeping job (digest/schedule/jobs.py): old tracking events are pruned and the raw
bytes of inbound messages older than `[inbound] keep_days` are purged, their events kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Event, InboundEvent, InboundKind, InboundMessage
from digest.inbound.process import Processor
from digest.inbound.verdicts import Received, Source, Verdict
from digest.schedule.jobs import Jobs

NOW = datetime(2026, 11, 29, 4, tzinfo=UTC)


def test_housekeeping_purges_old_inbound_messages_and_keeps_their_events(
    engine: Engine, session: Session, settings: Settings
) -> None:
    session.add(Event(kind="open", at=NOW - timedelta(days=400)))
    session.commit()
    settings = settings.model_copy(
        update={"inbound": settings.inbound.model_copy(update={"keep_days": 30})}
    )
    ages = (31, 29, 1)
    Processor(engine, settings, clock=lambda: NOW).apply(
        [
            (
                Received(
                    f"message {days}".encode(), Source.FILE, received_at=NOW - timedelta(days=days)
                ),
                Verdict(InboundKind.AUTO_REPLY),
            )
            for days in ages
        ]
    )
    counts = Jobs(engine, settings, clock=lambda: NOW).housekeeping()
    assert counts == {"events_pruned": 1, "inbound_purged": 1}
    session.expire_all()
    assert sorted(m.raw for m in session.exec(select(InboundMessage))) == [
        b"message 1",
        b"message 29",
    ]
    assert len(session.exec(select(InboundEvent)).all()) == 3
