"""Addresses on the wire (digest/send/addresses.py): IDN domains in punycode, non-ASCII local
parts only through a relay that offers SMTPUTF8; end to end against aiosmtpd."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery
from digest.errors import InvalidInput
from digest.send.addresses import NeedsSmtpUtf8, ascii_domain, needs_smtputf8, smtp_address
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.smtp import SmtpSender
from subscribers.models import Subscriber, Suppression
from subscribers.validate import email_key
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
ARABIC = "قارئ@مثال.السعودية"  # an Arabic local part on an Arabic IDN (.السعودية)


def test_domains_go_out_in_punycode_and_ascii_addresses_are_untouched() -> None:
    assert smtp_address("user@bücher.de", smtputf8=False) == "user@xn--bcher-kva.de"
    assert (
        smtp_address("news@مثال.السعودية", smtputf8=False) == "news@xn--mgbh0fb.xn--mgberp4a5d4ar"
    )
    assert smtp_address("Reem.K@Example.ORG", smtputf8=False) == "Reem.K@example.org"
    assert ascii_domain("xn--bcher-kva.de") == "xn--bcher-kva.de"


def test_a_non_ascii_local_part_needs_smtputf8() -> None:
    assert needs_smtputf8(ARABIC) and not needs_smtputf8("user@bücher.de")
    assert smtp_address(ARABIC, smtputf8=True) == "قارئ@xn--mgbh0fb.xn--mgberp4a5d4ar"
    with pytest.raises(NeedsSmtpUtf8, match="does not offer SMTPUTF8"):
        smtp_address(ARABIC, smtputf8=False)
    with pytest.raises(InvalidInput, match="punycode"):
        smtp_address("a@" + "ب" * 80 + ".de", smtputf8=True)  # a label past 63 octets


_LETTERS = st.characters(categories=["Ll", "Lo"], exclude_characters="@")


@given(
    local=st.text(alphabet=_LETTERS, min_size=1, max_size=10),
    labels=st.lists(st.text(alphabet=_LETTERS, min_size=1, max_size=12), min_size=2, max_size=3),
)
def test_any_address_that_goes_out_has_an_ascii_domain_and_converts_once(
    local: str, labels: list[str]
) -> None:
    address = f"{local}@{'.'.join(labels)}"
    try:
        wire = smtp_address(address, smtputf8=True)
    except InvalidInput:
        return  # refused with a reason, never an exception of another kind
    domain = wire.rpartition("@")[2]
    assert domain.isascii() and wire.rpartition("@")[0] == local
    assert smtp_address(wire, smtputf8=True) == wire  # already on the wire: unchanged


# -- end to end ---------------------------------------------------------------------------


def _world(session: Session, *emails: str) -> World:
    """A list whose readers have these addresses as stored (a non-ASCII local part is
    written straight to the row, as a server that allows them would store it)."""
    world = make_world(session)
    for i, address in enumerate(emails):
        add_reader(session, world, f"reader{i}@example.org", ["politics"])
        subscriber = session.exec(
            select(Subscriber).where(Subscriber.email == f"reader{i}@example.org")
        ).one()
        subscriber.email, subscriber.email_key = address, email_key(address)
        session.add(subscriber)
    session.commit()
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    return world


def _send(engine: Engine, world: World, settings: Settings, port: int) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 2})
    options = DispatchOptions.from_settings(settings.model_copy(update={"smtp": smtp}))

    async def go() -> DispatchReport:
        async with SmtpSender(smtp) as sender:
            hooks = RunHooks(clock=lambda: NOW)
            return await Dispatcher(engine, world.daily, sender, options, hooks).run()

    return asyncio.run(go())


def test_idn_readers_get_their_digest_through_a_relay_without_smtputf8(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: user@bücher.de and an Arabic IDN were accepted, then never sent.
    world = _world(session, "user@bücher.de", "news@مثال.السعودية")
    with SmtpSink(smtputf8=False) as sink:
        report = _send(engine, world, settings, sink.port)
        assert report.sent == 2
        assert sorted(sink.recipients()) == [
            "news@xn--mgbh0fb.xn--mgberp4a5d4ar",
            "user@xn--bcher-kva.de",
        ]
        headers = [
            email.message_from_bytes(m.data, policy=email.policy.default) for m in sink.messages
        ]
    assert sorted(str(h["To"]) for h in headers) == [
        "news@xn--mgbh0fb.xn--mgberp4a5d4ar",
        "user@xn--bcher-kva.de",
    ]
    assert all(m.data.split(b"\r\n\r\n", 1)[0].isascii() for m in sink.messages)


def test_a_non_ascii_local_part_fails_alone_through_a_relay_without_smtputf8(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, ARABIC, "ok@example.org")
    with SmtpSink(smtputf8=False) as sink:
        report = _send(engine, world, settings, sink.port)
        assert (report.sent, report.permanent) == (1, 1)
        assert sink.recipients() == ["ok@example.org"]
    session.expire_all()
    failed = session.exec(select(Delivery).where(Delivery.status == "failed_permanent")).one()
    assert "does not offer SMTPUTF8" in (failed.smtp_message or "")
    assert session.exec(select(Suppression)).all() == []  # the relay's limit, not a bounce


def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_relay_offers_it(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, ARABIC, "ok@example.org")
    with SmtpSink(smtputf8=True) as sink:
        report = _send(engine, world, settings, sink.port)
        assert report.sent == 2
        (received,) = [m for m in sink.messages if not m.rcpt_tos[0].isascii()]
    assert received.rcpt_tos == ("قارئ@xn--mgbh0fb.xn--mgberp4a5d4ar",)
    parsed = email.message_from_bytes(received.data, policy=email.policy.SMTPUTF8)
    assert str(parsed["To"]) == "قارئ@xn--mgbh0fb.xn--mgberp4a5d4ar"
