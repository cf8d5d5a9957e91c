"""Digests already sent, built by hand, and the verdicts that come back about them (inbound
policy tests): a list of readers, editions, `sent` delivery rows with Message-IDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, Edition, EditionStatus, InboundKind
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.verp import Verp, VerpKind, VerpRef
from subscribers.models import Subscriber
from tests.helpers.world import World, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


@dataclass
class Sent:
    """A list with readers r0@example.org …, and the deliveries made so far."""

    world: World
    subscribers: dict[str, int]
    editions: dict[date, int] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def list_id(self) -> int:
        return self.world.daily.id or 0


def sent_world(session: Session, readers: int) -> Sent:
    world = make_world(session)
    for i in range(readers):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    ids = {s.email: s.id or 0 for s in session.exec(select(Subscriber))}
    return Sent(world, ids)


def deliver(
    session: Session,
    sent: Sent,
    email: str,
    at: datetime,
    *,
    status: str = "sent",
    edition_status: str = EditionStatus.SENDING,
) -> Delivery:
    """A delivery of the edition of `at`'s date to `email`, sent at `at`."""
    day = at.date()
    if day not in sent.editions:
        edition = Edition(list_id=sent.list_id, local_date=day, status=edition_status)
        session.add(edition)
        session.flush()
        sent.editions[day] = edition.id or 0
    delivery = Delivery(
        edition_id=sent.editions[day],
        list_id=sent.list_id,
        subscriber_id=sent.subscribers[email],
        status=status,
        window_start=at - timedelta(days=1),
        window_end=at,
        message_id=f"<m{len(sent.deliveries) + 1}.{day.isoformat()}@news.example.org>",
        sent_at=at if status == "sent" else None,
    )
    session.add(delivery)
    session.commit()
    sent.deliveries.append(delivery)
    return delivery


def mail(raw: bytes = b"", source: Source = Source.SMTP, at: datetime | None = None) -> Received:
    """A message as it arrived; distinct bytes unless given (each is its own message)."""
    global _counter
    _counter += 1
    return Received(raw or f"message {_counter}".encode(), source, received_at=at)


_counter = 0


def bounce(kind: InboundKind, delivery: Delivery, settings: Settings, **fields: object) -> Verdict:
    """A verdict about `delivery`, traced by its VERP b- token."""
    values: dict[str, object] = {"verp": VerpRef(VerpKind.BOUNCE, delivery.id or 0)}
    values.update(fields)
    return Verdict(kind, **values)  # type: ignore[arg-type]


def verp_of(settings: Settings) -> Verp:
    return Verp(settings.web.secret_key, settings.inbound.domain or "bounces.example.org")
