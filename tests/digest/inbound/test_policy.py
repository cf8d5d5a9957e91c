"""What each kind of verdict does (digest/inbound/policy.py, digest/inbound/soft.py), through
the Processor on a real database: suppressions, soft-bounce runs, complaints, mailto
unsubscribes, and that a suppressed address is not mailed by the next real planning."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, Event, InboundEvent, InboundKind
from digest.inbound.process import Handled, Processor
from digest.inbound.verdicts import Received, Source, Verdict
from digest.send.dispatcher import DispatchOptions, RunHooks
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from digest.tracking.tokens import Purpose, Signer
from digest.tracking.verp import VerpKind, VerpRef
from subscribers.models import ConsentEvent, Subscription, Suppression
from tests.helpers.sent import NOW, Sent, bounce, deliver, mail, sent_world
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import add_article

HARD, SOFT = InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE


def _apply(engine: Engine, settings: Settings, *pairs: tuple[Received, Verdict]) -> list[Handled]:
    return Processor(engine, settings, clock=lambda: NOW).apply(list(pairs))


def _suppressions(session: Session) -> dict[str, Suppression]:
    session.expire_all()
    return {s.email: s for s in session.exec(select(Suppression))}


def _statuses(session: Session, sent: Sent) -> dict[str, str]:
    session.expire_all()
    ids = {v: k for k, v in sent.subscribers.items()}
    return {ids[s.subscriber_id]: s.status for s in session.exec(select(Subscription))}


@pytest.fixture
def sent(session: Session) -> Sent:
    return sent_world(session, 4)


def test_a_hard_bounce_suppresses_the_recipient_with_the_reply_and_leaves_the_delivery_sent(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=2))
    verdict = bounce(
        HARD,
        delivery,
        settings,
        address="R0@Example.org",
        status="5.1.1",
        smtp_code=550,
        diagnostic="user unknown",
    )
    (handled,) = _apply(engine, settings, (mail(), verdict))
    assert (handled.kind, handled.action, handled.delivery_id) == (HARD, "suppressed", delivery.id)
    row = _suppressions(session)["r0@example.org"]
    assert (row.reason, row.smtp_code, row.enhanced, row.note) == (
        "hard_bounce",
        550,
        "5.1.1",
        "5.1.1 user unknown",
    )
    assert (row.delivery_id, row.edition_id, row.list_id) == (
        delivery.id,
        delivery.edition_id,
        sent.list_id,
    )
    session.expire_all()
    assert session.get(Delivery, delivery.id).status == "sent"  # type: ignore[union-attr]
    event = session.get(InboundEvent, handled.event_id)
    assert event is not None
    assert (event.kind, event.delivery_id, event.subscriber_id, event.edition_id) == (
        "hard_bounce",
        delivery.id,
        delivery.subscriber_id,
        delivery.edition_id,
    )
    assert (event.status, event.smtp_code, event.diagnostic, event.action) == (
        "5.1.1",
        550,
        "user unknown",
        "suppressed",
    )
    assert (event.email_key, event.source, event.message_id is not None) == (
        "r0@example.org",
        "smtp",
        True,
    )
    # Again (other bytes): recorded, nothing more to do.
    (again,) = _apply(engine, settings, (mail(), verdict))
    assert again.action == "none: already suppressed (hard_bounce)"


def _soft_run(
    engine: Engine,
    session: Session,
    settings: Settings,
    sent: Sent,
    pattern: str,
    *,
    newest_first: bool = False,
) -> list[Handled]:
    """Deliveries a day apart to r0@, oldest first: B bounces softly, C is clean; the
    bounces come in afterwards, in order (or newest first)."""
    start = NOW - timedelta(days=len(pattern))
    deliveries = [
        deliver(session, sent, "r0@example.org", start + timedelta(days=i))
        for i in range(len(pattern))
    ]
    handled: list[Handled] = []
    pairs = list(zip(deliveries, pattern, strict=True))
    for delivery, mark in reversed(pairs) if newest_first else pairs:
        if mark == "B":
            verdict = bounce(SOFT, delivery, settings, address="r0@example.org", status="4.2.2")
            handled += _apply(engine, settings, (mail(), verdict))
    return handled


def test_three_soft_bounced_deliveries_in_a_row_suppress_the_address(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    handled = _soft_run(engine, session, settings, sent, "BBB")
    assert [h.action for h in handled] == ["soft 1/3", "soft 2/3", "suppressed (soft 3/3)"]
    row = _suppressions(session)["r0@example.org"]
    assert (row.reason, row.enhanced) == ("soft_bounce", "4.2.2")
    assert row.note.startswith("3 soft bounces in a row: 4.2.2")


def test_soft_bounces_arriving_newest_first_still_add_up(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    # Relays retry for different lengths of time: the oldest digest's bounce may come last.
    handled = _soft_run(engine, session, settings, sent, "BBB", newest_first=True)
    assert [h.action for h in handled] == ["soft 1/3", "soft 2/3", "suppressed (soft 3/3)"]
    assert _suppressions(session)["r0@example.org"].reason == "soft_bounce"


def test_a_clean_delivery_between_soft_bounces_ends_the_run_in_any_order(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    handled = _soft_run(engine, session, settings, sent, "BBCBB", newest_first=True)
    assert [h.action for h in handled] == ["soft 1/3", "soft 2/3", "soft 1/3", "soft 2/3"]
    assert _suppressions(session) == {}


def test_a_clean_delivery_between_soft_bounces_ends_the_run(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    handled = _soft_run(engine, session, settings, sent, "BBCBB")
    assert [h.action for h in handled] == ["soft 1/3", "soft 2/3", "soft 1/3", "soft 2/3"]
    assert _suppressions(session) == {}


def test_soft_bounces_older_than_the_window_are_not_counted(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    # 14 days by default: the first two of BBBB (sent 16 and 15 days ago) are out of it.
    start = NOW - timedelta(days=16)
    deliveries = [
        deliver(session, sent, "r0@example.org", start + timedelta(days=i)) for i in (0, 1, 2, 3)
    ]
    actions = [
        _apply(engine, settings, (mail(), bounce(SOFT, d, settings)))[0].action for d in deliveries
    ]
    assert actions == [
        "none: delivery not sent within 14 days",
        "none: delivery not sent within 14 days",
        "soft 1/3",
        "soft 2/3",
    ]
    assert _suppressions(session) == {}


def test_several_soft_bounces_of_one_delivery_count_once_even_in_one_batch(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    first = deliver(session, sent, "r0@example.org", NOW - timedelta(days=2))
    second = deliver(session, sent, "r0@example.org", NOW - timedelta(days=1))
    handled = _apply(
        engine,
        settings,
        (mail(), bounce(SOFT, first, settings)),
        (mail(), bounce(SOFT, first, settings)),
        (mail(), bounce(SOFT, second, settings)),
        (mail(), bounce(SOFT, second, settings)),
    )
    assert [h.action for h in handled] == [
        "soft 1/3",
        "none: delivery already counted (soft 1/3)",
        "soft 2/3",
        "none: delivery already counted (soft 2/3)",
    ]
    assert _suppressions(session) == {}


def test_delays_auto_replies_challenges_and_unknowns_are_recorded_and_do_nothing(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=1))
    kinds = [InboundKind.DELAYED, InboundKind.AUTO_REPLY, InboundKind.CHALLENGE]
    handled = _apply(
        engine,
        settings,
        *[(mail(), bounce(kind, delivery, settings)) for kind in kinds],
        (mail(), Verdict(InboundKind.UNKNOWN, reason="no idea")),
    )
    assert [(h.kind, h.action) for h in handled] == [
        (InboundKind.DELAYED, "none: delay warning"),
        (InboundKind.AUTO_REPLY, "none: auto-reply"),
        (InboundKind.CHALLENGE, "none: challenge-response"),
        (InboundKind.UNKNOWN, "none: unknown"),
    ]
    assert handled[0].delivery_id == delivery.id  # linked, not acted on
    assert _suppressions(session) == {}
    assert set(_statuses(session, sent).values()) == {"active"}
    # Delays never count towards a soft-bounce run.
    for _ in range(3):
        _apply(engine, settings, (mail(), bounce(InboundKind.DELAYED, delivery, settings)))
    assert _suppressions(session) == {}


def test_a_complaint_unsubscribes_from_every_list_suppresses_and_counts_in_the_stats(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    from subscribers.lists import ListSpec, create_list
    from subscribers.people import Consent, Person, subscribe

    weekly = create_list(session, ListSpec(slug="weekly", name="weekly", hour=7))
    subscribe(
        session,
        Person("r1@example.org", "Asia/Riyadh"),
        weekly,
        consent=Consent(confirmed=True),
    )
    session.commit()
    delivery = deliver(session, sent, "r1@example.org", NOW - timedelta(hours=3))
    verdict = bounce(InboundKind.COMPLAINT, delivery, settings, address="r1@example.org")
    (handled,) = _apply(engine, settings, (mail(source=Source.SES), verdict))
    assert handled.kind is InboundKind.COMPLAINT
    assert handled.action == f"suppressed, unsubscribed list {sent.list_id}, {weekly.id}"
    session.expire_all()
    rows = session.exec(
        select(Subscription).where(Subscription.subscriber_id == delivery.subscriber_id)
    ).all()
    assert {r.status for r in rows} == {"unsubscribed"}
    assert _suppressions(session)["r1@example.org"].reason == "complaint"
    steps = session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")).all()
    assert {s.source for s in steps} == {"complaint"}
    (event,) = session.exec(select(Event)).all()
    assert (event.kind, event.delivery_id, event.subscriber_id, event.list_id) == (
        "complaint",
        delivery.id,
        delivery.subscriber_id,
        sent.list_id,
    )


def test_a_mailto_unsubscribe_by_u_address_leaves_that_list_only_as_the_web_one_click(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r2@example.org", NOW - timedelta(hours=3))
    verdict = Verdict(
        InboundKind.UNSUBSCRIBE,
        address="someone-else@example.net",  # an alias: the signed address decides
        verp=VerpRef(VerpKind.UNSUBSCRIBE, delivery.id or 0),
    )
    (handled,) = _apply(engine, settings, (mail(), verdict))
    assert handled.action == f"unsubscribed list {sent.list_id}"
    assert _statuses(session, sent)["r2@example.org"] == "unsubscribed"
    assert _statuses(session, sent)["r1@example.org"] == "active"
    assert _suppressions(session) == {}  # leaving a list is not a suppression
    (step,) = session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn"))
    assert step.source == "mailto"
    (event,) = session.exec(select(Event)).all()
    assert (event.kind, event.delivery_id, event.list_id) == (
        "unsubscribe",
        delivery.id,
        sent.list_id,
    )
    (again,) = _apply(engine, settings, (mail(), verdict))
    assert again.action == "none: already unsubscribed"
    assert len(session.exec(select(Event)).all()) == 1


def test_a_mailto_unsubscribe_by_signed_token_and_forged_ones(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r3@example.org", NOW - timedelta(hours=3))
    token = Signer(settings.web.secret_key).dumps(
        Purpose.UNSUBSCRIBE, delivery.subscriber_id, sent.list_id
    )
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    handled = _apply(
        engine,
        settings,
        (mail(), Verdict(InboundKind.UNSUBSCRIBE, unsubscribe_token=forged)),
        (mail(), Verdict(InboundKind.UNSUBSCRIBE)),  # nothing to say who
        (mail(), bounce(InboundKind.UNSUBSCRIBE, delivery, settings)),  # a b- token is not one
        (mail(), Verdict(InboundKind.UNSUBSCRIBE, unsubscribe_token=token)),
    )
    assert [h.kind for h in handled] == [InboundKind.UNKNOWN] * 3 + [InboundKind.UNSUBSCRIBE]
    assert "token is not valid" in handled[0].reason
    assert "not a u- address" in handled[2].reason
    assert handled[3].action == f"unsubscribed list {sent.list_id}"
    assert handled[3].delivery_id == delivery.id  # the latest digest on the list, as the web
    assert _statuses(session, sent)["r3@example.org"] == "unsubscribed"


def test_only_the_deliverys_own_recipient_may_be_affected(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=3))
    handled = _apply(
        engine,
        settings,
        (mail(), bounce(HARD, delivery, settings, address="r1@example.org")),
        (mail(), bounce(InboundKind.COMPLAINT, delivery, settings, address="ceo@example.org")),
        (
            mail(),
            bounce(HARD, delivery, settings, address="x@example.org", also=("r0@example.org",)),
        ),
    )
    assert [h.kind for h in handled[:2]] == [InboundKind.UNKNOWN, InboundKind.UNKNOWN]
    assert "hard_bounce: names 'r1@example.org', not the recipient of delivery" in handled[0].reason
    assert handled[0].delivery_id is None
    assert (handled[2].kind, handled[2].action) == (HARD, "suppressed")  # among those named
    assert list(_suppressions(session)) == ["r0@example.org"]
    assert set(_statuses(session, sent).values()) == {"active"}


def test_a_bounce_for_a_delivery_we_cannot_find_is_unknown_with_the_reason(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    handled = _apply(
        engine,
        settings,
        (mail(), Verdict(HARD, address="never@example.org", verp=VerpRef(VerpKind.BOUNCE, 999))),
        (mail(), Verdict(HARD, address="never@example.org", original_message_id="x@y")),
        (mail(), Verdict(SOFT)),
    )
    assert [h.kind for h in handled] == [InboundKind.UNKNOWN] * 3
    assert "delivery 999, now gone" in handled[0].reason
    assert "Message-ID is none of ours" in handled[1].reason
    assert "no VERP token, Message-ID or address" in handled[2].reason
    assert _suppressions(session) == {}


def test_a_suppressed_address_is_not_mailed_by_the_next_send(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(days=1))
    _apply(engine, settings, (mail(), bounce(HARD, delivery, settings, address="r0@example.org")))
    add_article(session, sent.world, "خبر جديد", ["politics"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port, "connections": 1})
        options = RunOptions(
            DispatchOptions.from_settings(settings.model_copy(update={"smtp": smtp})), now=NOW
        )
        asyncio.run(
            send_list(
                engine, sent.world.daily, SmtpSender(smtp), options, RunHooks(clock=lambda: NOW)
            )
        )
    assert sorted(sink.recipients()) == ["r1@example.org", "r2@example.org", "r3@example.org"]


def test_a_providers_unsubscribe_event_leaves_the_list_of_the_delivery_it_names(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r1@example.org", NOW - timedelta(hours=3))
    mid = delivery.message_id or ""
    handled = _apply(
        engine,
        settings,
        (
            mail(source=Source.POSTMARK),
            Verdict(InboundKind.UNSUBSCRIBE, address="x@example.org", original_message_id=mid),
        ),
        (
            mail(source=Source.SMTP),
            Verdict(InboundKind.UNSUBSCRIBE, address="r1@example.org", original_message_id=mid),
        ),
        (
            mail(source=Source.POSTMARK),
            Verdict(InboundKind.UNSUBSCRIBE, address="R1@example.org", original_message_id=mid),
        ),
    )
    assert [h.kind for h in handled] == [
        InboundKind.UNKNOWN,
        InboundKind.UNKNOWN,
        InboundKind.UNSUBSCRIBE,
    ]
    assert handled[2].action == f"unsubscribed list {sent.list_id}"
    assert _statuses(session, sent)["r1@example.org"] == "unsubscribed"
    (step,) = session.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn"))
    assert step.source == "postmark"
