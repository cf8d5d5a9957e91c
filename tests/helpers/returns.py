"""An edition sent to a few readers, and inbound events written straight into the table
(the reporting tests read what the processing would have stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from digest.db.models import Delivery, DeliveryStatus, InboundEvent, InboundKind
from digest.db.tables import DELIVERY
from digest.send.plan import plan
from subscribers.models import Subscriber
from tests.helpers.outbox import NOW, due_world
from tests.helpers.world import World


@dataclass(frozen=True)
class Sent:
    """The edition sent at NOW: its id, and each reader's delivery id by address."""

    world: World
    edition_id: int
    deliveries: dict[str, int]
    subscribers: dict[str, int]


def sent_edition(engine: Engine, session: Session, n: int = 4) -> Sent:
    """`n` readers (r0@example.org …) planned at NOW and all accepted by the relay."""
    world, selection = due_world(engine, session, n=n)
    plan(engine, selection, NOW)
    with engine.begin() as connection:
        connection.execute(
            update(DELIVERY)
            .where(DELIVERY.c.status == DeliveryStatus.QUEUED.value)
            .values(status=DeliveryStatus.SENT.value, sent_at=NOW, attempts=1)
        )
    session.expire_all()
    people = {s.id: s.email for s in session.exec(select(Subscriber))}
    rows = session.exec(
        select(Delivery)
        .where(Delivery.status == DeliveryStatus.SENT.value)
        .order_by(col(Delivery.id))
    ).all()
    return Sent(
        world,
        rows[0].edition_id,
        {people[d.subscriber_id]: d.id or 0 for d in rows},
        {email: sid for sid, email in people.items() if sid is not None},
    )


def add_event(
    session: Session,
    sent: Sent | None,
    kind: InboundKind,
    address: str,
    *,
    minutes: int = 0,
    traced: bool = True,
    **values: object,
) -> InboundEvent:
    """An inbound event about `address`, received `minutes` after NOW; `traced`: identified
    to its delivery (so its subscriber, list and edition)."""
    event = InboundEvent(
        kind=kind.value,
        source=str(values.pop("source", "smtp")),
        received_at=NOW + timedelta(minutes=minutes),
        address=address,
        email_key=address.lower(),
        **values,  # type: ignore[arg-type]
    )
    if traced and sent is not None and address in sent.deliveries:
        event.delivery_id = sent.deliveries[address]
        event.subscriber_id = sent.subscribers[address]
        event.list_id = sent.world.daily.id
        event.edition_id = sent.edition_id
    session.add(event)
    session.commit()
    return event


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)
