"""Double opt-in mail: the confirmation of an unconfirmed subscription, the welcome of a
confirmed one, each in the subscriber's language and only in its own state."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput
from digest.send.confirmations import confirmation_envelope, mail_confirmation, welcome_envelope
from digest.send.smtp import SmtpSender
from digest.tracking.tokens import Purpose, Signer
from subscribers.consent import confirmable
from subscribers.lists import ListSpec, create_list
from subscribers.people import Person, find_subscriber, subscribe
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import parse
from tests.helpers.world import World, add_reader, make_world

WEEK = timedelta(days=7)


def _ids(session: Session, email: str, list_id: int | None) -> dict[str, int]:
    return {"subscriber_id": find_subscriber(session, email).id or 0, "list_id": list_id or 0}


def _text(data: bytes) -> tuple[EmailMessage, str]:
    message = parse(data)
    body = message.get_body(("plain",))
    assert body is not None
    return message, str(body.get_content())


@pytest.fixture
def optin(session: Session) -> World:
    """The daily list, and "weekly": double opt-in, politics and economy."""
    world = make_world(session)
    weekly = create_list(
        session,
        ListSpec(
            slug="weekly",
            name="الأسبوعية",
            cadence="weekly",
            double_opt_in=True,
            topic_ids=[world.topic_id("politics"), world.topic_id("economy")],
        ),
    )
    session.commit()
    return World(weekly, world.topics)


def test_an_unconfirmed_subscriber_is_mailed_the_link_and_only_they_are(
    engine: Engine, session: Session, settings: Settings, optin: World
) -> None:
    subscribe(session, Person("new@example.org", "UTC"), optin.daily)
    session.commit()
    ids = _ids(session, "new@example.org", optin.daily.id)
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port})
        outcome = asyncio.run(mail_confirmation(engine, settings, SmtpSender(smtp), **ids))
        assert outcome.status == "sent"
        (received,) = sink.messages
    message, text = _text(received.data)
    assert received.rcpt_tos == ("new@example.org",)
    assert message["Feedback-ID"].startswith("confirm:weekly:confirm:")
    assert re.search(r"/confirm/\S+", text)
    with pytest.raises(InvalidInput, match=r"unconfirmed .* not confirmed"):
        welcome_envelope(engine, settings, **ids)


def test_the_welcome_names_the_chosen_topics_and_the_cadence(
    engine: Engine, session: Session, settings: Settings, optin: World
) -> None:
    add_reader(session, optin, "reem@example.org", ["economy"], timezone="UTC")
    add_reader(session, optin, "sam@example.org", [], timezone="UTC", locale="en", name="Sam")
    reem = _ids(session, "reem@example.org", optin.daily.id)
    message, text = _text(welcome_envelope(engine, settings, **reem).data)
    assert message["Subject"] == "أهلًا بك في الأسبوعية"
    assert "موضوعاتك: اقتصاد" in text and "سياسة" not in text
    sam = _ids(session, "sam@example.org", optin.daily.id)
    message, text = _text(welcome_envelope(engine, settings, **sam).data)
    assert message["Content-Language"] == "en"
    assert "Your topics: Politics, Economy" in text  # none chosen: every topic of the list
    assert "once a week" in text
    with pytest.raises(InvalidInput, match="nothing to confirm"):
        confirmation_envelope(engine, settings, **sam)


def test_the_confirmation_names_nobody_and_each_one_ends_the_link_before(
    engine: Engine, session: Session, settings: Settings, optin: World
) -> None:
    spam = "Claim your prize at https://prize.example"
    subscribe(session, Person("new@example.org", "UTC", name=spam), optin.daily)
    session.commit()
    ids = _ids(session, "new@example.org", optin.daily.id)
    first = confirmation_envelope(engine, settings, **ids)
    message, text = _text(first.data)
    assert str(message["To"]) == "new@example.org"
    assert "prize" not in first.data.decode("ascii", "replace") and "prize" not in text
    second, _ = _text(confirmation_envelope(engine, settings, **ids).data)
    links = [re.findall(r"/confirm/(\S+)", _text(e)[1]) for e in (first.data, second.as_bytes())]
    signer = Signer(settings.web.secret_key)
    (old,), (new,) = links
    (*_, old_nonce), (*_, new_nonce) = (signer.loads(Purpose.CONFIRM, t) for t in (old, new))
    with Session(engine) as check:
        assert confirmable(check, *ids.values(), new_nonce, max_age=WEEK, now=utcnow())
        assert not confirmable(check, *ids.values(), old_nonce, max_age=WEEK, now=utcnow())
