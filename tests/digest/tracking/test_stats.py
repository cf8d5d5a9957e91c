"""Per-edition figures of what came back by mail: bounces, complaints, mailto unsubscribes."""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlmodel import Session

from digest.db.models import DeliveryStatus, Event, EventKind, InboundKind
from digest.db.tables import DELIVERY
from digest.inbound.verdicts import Source
from digest.tracking.stats import edition_stats
from tests.helpers.returns import add_event, sent_edition

K = InboundKind


def test_bounces_complaints_and_mailto_unsubscribes_count_once_per_delivery(
    engine: Engine, session: Session
) -> None:
    sent = sent_edition(engine, session, n=8)
    d = sent.deliveries
    # r0 bounced twice (the relay's DSN and a copy): one hard bounce.
    add_event(session, sent, K.HARD_BOUNCE, "r0@example.org", minutes=1)
    add_event(session, sent, K.HARD_BOUNCE, "r0@example.org", minutes=2, source="ses")
    add_event(session, sent, K.HARD_BOUNCE, "r1@example.org")
    add_event(session, sent, K.SOFT_BOUNCE, "r2@example.org")
    add_event(session, sent, K.SOFT_BOUNCE, "r2@example.org", minutes=5)
    # Recorded, never counted.
    add_event(session, sent, K.DELAYED, "r3@example.org")
    add_event(session, sent, K.AUTO_REPLY, "r3@example.org")
    add_event(session, sent, K.CHALLENGE, "r3@example.org")
    add_event(session, sent, K.UNKNOWN, "r3@example.org")
    add_event(session, None, K.HARD_BOUNCE, "stranger@example.org")  # never traced
    # r4 complained through a feedback loop, recorded twice (inbound and tracking event).
    add_event(session, sent, K.COMPLAINT, "r4@example.org")
    session.add(Event(kind=EventKind.COMPLAINT, delivery_id=d["r4@example.org"]))
    # r5 unsubscribed by mail (and the one-click record of it), r6 by the web link.
    add_event(session, sent, K.UNSUBSCRIBE, "r5@example.org")
    session.add(Event(kind=EventKind.UNSUBSCRIBE, delivery_id=d["r5@example.org"]))
    session.add(Event(kind=EventKind.UNSUBSCRIBE, delivery_id=d["r6@example.org"]))
    session.commit()
    # One message refused at RCPT time: sent, not delivered.
    with engine.begin() as connection:
        connection.execute(
            update(DELIVERY)
            .where(DELIVERY.c.id == d["r7@example.org"])
            .values(status=DeliveryStatus.FAILED_PERMANENT.value)
        )
    (stats,) = edition_stats(engine, edition_id=sent.edition_id)
    assert (stats.sent, stats.delivered, stats.permanent_failures) == (8, 7, 1)
    assert (stats.hard_bounces, stats.soft_bounces) == (2, 1)
    assert (stats.complaints, stats.unsubscribes, stats.mailto_unsubscribes) == (1, 2, 1)
    data = stats.as_dict()
    assert data["rates"] == {
        "open": 0.0,
        "click": 0.0,
        "unsubscribe": round(2 / 7, 4),
        "complaint": round(1 / 7, 4),
        "hard_bounce": round(2 / 7, 4),
        "soft_bounce": round(1 / 7, 4),
        "mailto_unsubscribe": round(1 / 7, 4),
    }
    assert data["hard_bounces"] == 2 and data["mailto_unsubscribes"] == 1


def test_an_edition_with_nothing_back_has_zeros_and_no_rates_before_sending(
    engine: Engine, session: Session
) -> None:
    sent = sent_edition(engine, session, n=2)
    (stats,) = edition_stats(engine, list_slug="daily")
    assert (stats.hard_bounces, stats.soft_bounces, stats.complaints) == (0, 0, 0)
    assert stats.rates["hard_bounce"] == 0.0
    with engine.begin() as connection:
        connection.execute(update(DELIVERY).values(status=DeliveryStatus.QUEUED.value))
    (stats,) = edition_stats(engine, edition_id=sent.edition_id)
    assert stats.rates["hard_bounce"] is None and stats.rates["complaint"] is None


def test_mailto_unsubscribes_count_only_mail_that_unsubscribed_someone(
    engine: Engine, session: Session
) -> None:
    sent = sent_edition(engine, session, n=8)
    # Counted: mail to the u- address through each way mail comes in.
    for n, source in enumerate((Source.SMTP, Source.FILE, Source.STDIN, Source.IMAP)):
        add_event(
            session,
            sent,
            K.UNSUBSCRIBE,
            f"r{n}@example.org",
            source=source,
            action="unsubscribed list 1",
        )
    # Not mailto: a provider's unsubscribe reaches us by webhook, not by mail.
    for n, source in enumerate(
        (Source.SES, Source.POSTMARK, Source.SENDGRID, Source.MAILGUN), start=4
    ):
        add_event(
            session,
            sent,
            K.UNSUBSCRIBE,
            f"r{n}@example.org",
            source=source,
            action="unsubscribed list 1",
        )
    # Mail that unsubscribed nobody: the reader had already left the list.
    add_event(
        session,
        sent,
        K.UNSUBSCRIBE,
        "r4@example.org",
        minutes=1,
        action="none: already unsubscribed",
    )
    session.commit()
    (stats,) = edition_stats(engine, edition_id=sent.edition_id)
    assert stats.mailto_unsubscribes == 4
    assert stats.unsubscribes == 8  # every way out counts as an unsubscribe
