"""The addresses naming a delivery: VERP envelope sender, u- mailto and Message-ID token, alone
and through the dispatcher to a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from digest.config import Settings
from digest.db.models import Delivery
from digest.send.addressing import DeliveryAddresses
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.mime import make_message_id
from digest.send.smtp import SmtpSender
from digest.tracking.verp import BadVerp, Verp, VerpKind, VerpRef
from subscribers.models import Subscriber
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
BOUNCES = "bounces.example.org"


def _with_domain(settings: Settings, domain: str = BOUNCES) -> Settings:
    inbound = settings.inbound.model_copy(update={"domain": domain})
    return settings.model_copy(update={"inbound": inbound})


def _send(engine: Engine, world: World, settings: Settings, port: int) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 2})
    settings = settings.model_copy(update={"smtp": smtp})
    options = DispatchOptions.from_settings(settings)

    async def go() -> DispatchReport:
        async with SmtpSender(smtp) as sender:
            hooks = RunHooks(clock=lambda: NOW)
            return await Dispatcher(engine, world.daily, sender, options, hooks).run()

    return asyncio.run(go())


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _unsubscribe(message: EmailMessage) -> list[str]:
    return [part.strip(" <>") for part in str(message["List-Unsubscribe"]).split(",")]


def _deliveries(session: Session) -> dict[str, Delivery]:
    """Each delivery by its recipient's address."""
    session.expire_all()
    query = select(Subscriber.email, Delivery).join(
        Delivery, col(Delivery.subscriber_id) == Subscriber.id
    )
    return dict(session.exec(query).all())


def _world(session: Session, *emails: str) -> World:
    world = make_world(session)
    for address in emails:
        add_reader(session, world, address, ["politics"])
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    return world


def test_with_a_bounce_domain_each_address_names_its_delivery(
    engine: Engine, session: Session, settings: Settings
) -> None:
    settings = _with_domain(settings)
    world = _world(session, "reem@example.org", "omar@example.org")
    verp = Verp(settings.web.secret_key, BOUNCES)
    with SmtpSink() as sink:
        report = _send(engine, world, settings, sink.port)
        assert report.sent == 2
        rows = _deliveries(session)
        for received in sink.messages:
            (recipient,) = received.rcpt_tos
            delivery_id = rows[recipient].id or 0
            assert received.mail_from.endswith(f"@{BOUNCES}")
            assert received.mail_from.startswith("b-")
            assert verp.check_address(received.mail_from) == VerpRef(VerpKind.BOUNCE, delivery_id)
            message = _parse(received.data)
            https, mailto = _unsubscribe(message)  # the one-click HTTPS URL stays first
            assert https.startswith(settings.web.base_url + "/u/")
            address, _, query = mailto.removeprefix("mailto:").partition("?")
            assert query == "subject=unsubscribe"
            assert verp.check_address(address) == VerpRef(VerpKind.UNSUBSCRIBE, delivery_id)
            message_id = str(message["Message-ID"])
            assert message_id == rows[recipient].message_id
            local = message_id.strip("<>").partition("@")[0]
            assert local.startswith(received.mail_from.partition("@")[0] + ".")
            assert verp.find(message_id) == VerpRef(VerpKind.BOUNCE, delivery_id)


def test_without_a_bounce_domain_the_envelope_sender_stays_the_from_address(
    engine: Engine, session: Session, settings: Settings
) -> None:
    assert not settings.inbound.domain
    world = _world(session, "reem@example.org")
    with SmtpSink() as sink:
        assert _send(engine, world, settings, sink.port).sent == 1
        (received,) = sink.messages
    assert received.mail_from == settings.sender.from_address
    message = _parse(received.data)
    mailto = _unsubscribe(message)[1]
    assert mailto.startswith(f"mailto:unsubscribe@{settings.sender.list_id_domain}?")
    assert "subject=unsubscribe%20" in mailto
    # The Message-ID still carries the delivery's token, signed on the List-Id domain.
    verp = Verp(settings.web.secret_key, settings.sender.list_id_domain)
    delivery = _deliveries(session)["reem@example.org"]
    assert verp.find(str(message["Message-ID"])) == VerpRef(VerpKind.BOUNCE, delivery.id or 0)
    assert str(message["Message-ID"]).endswith(f"@{settings.sender.list_id_domain}>")


def test_a_utf8_recipient_goes_out_with_the_verp_sender(
    engine: Engine, session: Session, settings: Settings
) -> None:
    settings = _with_domain(settings)
    world = _world(session, "ريم@example.org")
    with SmtpSink(smtputf8=True) as sink:
        assert _send(engine, world, settings, sink.port).sent == 1
        (received,) = sink.messages
    assert received.rcpt_tos == ("ريم@example.org",)
    verp = Verp(settings.web.secret_key, BOUNCES)
    assert verp.check_address(received.mail_from).kind is VerpKind.BOUNCE


def test_delivery_addresses_alone(settings: Settings) -> None:
    plain = DeliveryAddresses.from_settings(settings)
    assert plain.bounce_domain == ""
    named = plain.of(42, "TOKEN")
    assert named.envelope_sender == settings.sender.from_address
    assert named.unsubscribe_mailto.endswith("?subject=unsubscribe%20TOKEN")
    upper = DeliveryAddresses.from_settings(_with_domain(settings, "Bounces.Example.ORG"))
    named = upper.of(42, "TOKEN")
    assert named.envelope_sender.endswith("@bounces.example.org")
    assert "TOKEN" not in named.unsubscribe_mailto
    verp = Verp(settings.web.secret_key, "bounces.example.org")
    assert verp.check_address(named.envelope_sender) == VerpRef(VerpKind.BOUNCE, 42)
    # Two messages to the same delivery (a retry) get different Message-IDs, same token.
    again = upper.of(42, "TOKEN")
    assert again.message_id != named.message_id
    assert again.message_id.split(".")[0] == named.message_id.split(".")[0]
    # Another secret's addresses do not verify: nobody can forge one for a delivery.
    with pytest.raises(BadVerp):
        Verp("another-secret-another-secret-1234", BOUNCES).check_address(named.envelope_sender)


def test_make_message_id_takes_an_optional_prefix() -> None:
    assert make_message_id("news.example.org").endswith("@news.example.org>")
    prefixed = make_message_id("news.example.org", prefix="b-1a-abcdefghijklm")
    assert prefixed.startswith("<b-1a-abcdefghijklm.")
    assert prefixed.endswith("@news.example.org>")
