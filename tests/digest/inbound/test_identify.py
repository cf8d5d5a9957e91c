"""Finding the delivery a verdict is about (digest/inbound/identify.py): VERP token, then the
Message-ID in both spellings, then the address for providers' events (and for mail without a
bounce domain); and only the delivery's own recipient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.db.models import Delivery, InboundKind
from digest.inbound.identify import Found, IdentifyOptions, Lookup, message_id_forms
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.verp import VerpKind, VerpRef
from tests.helpers.sent import NOW, Sent, deliver, mail, sent_world

HARD = InboundKind.HARD_BOUNCE
WITH_DOMAIN = IdentifyOptions(mail_by_address=False, window=timedelta(days=14))
WITHOUT_DOMAIN = IdentifyOptions(mail_by_address=True, window=timedelta(days=14))


def _find(
    engine: Engine, options: IdentifyOptions, *pairs: tuple[Received, Verdict]
) -> list[Found]:
    with engine.connect() as connection:
        lookup = Lookup(connection, list(pairs), options, NOW)
        return [lookup.find(received, verdict) for received, verdict in pairs]


@pytest.fixture
def sent(session: Session) -> Sent:
    return sent_world(session, 2)


@pytest.fixture
def two(session: Session, sent: Sent) -> tuple[Delivery, Delivery]:
    older = deliver(session, sent, "r0@example.org", NOW - timedelta(days=2))
    newer = deliver(session, sent, "r0@example.org", NOW - timedelta(days=1))
    return older, newer


def test_message_id_forms() -> None:
    assert message_id_forms(" <a.b@c> ") == ("<a.b@c>", "a.b@c")
    assert message_id_forms("a.b@c") == ("<a.b@c>", "a.b@c")


def test_the_verp_token_comes_first(engine: Engine, two: tuple[Delivery, Delivery]) -> None:
    older, newer = two
    verdict = Verdict(
        HARD,
        verp=VerpRef(VerpKind.BOUNCE, older.id or 0),
        original_message_id=newer.message_id or "",
    )
    (found,) = _find(engine, WITH_DOMAIN, (mail(), verdict))
    assert found.target is not None and found.target.delivery_id == older.id
    assert found.reason == "by VERP b- token"
    assert (found.target.email_key, found.target.edition_id) == ("r0@example.org", older.edition_id)


def test_the_message_id_is_matched_with_and_without_angle_brackets(
    engine: Engine, two: tuple[Delivery, Delivery]
) -> None:
    older, newer = two
    assert older.message_id and older.message_id.startswith("<")
    bare = older.message_id.strip("<>")
    found = _find(
        engine,
        WITH_DOMAIN,
        (mail(), Verdict(HARD, original_message_id=bare)),
        (mail(), Verdict(HARD, original_message_id=newer.message_id or "")),
    )
    assert [f.target.delivery_id if f.target else None for f in found] == [older.id, newer.id]
    assert found[0].reason == "by Message-ID of the returned message"


def test_a_gone_delivery_falls_back_to_the_message_id(
    engine: Engine, two: tuple[Delivery, Delivery]
) -> None:
    older, _ = two
    verdict = Verdict(
        HARD, verp=VerpRef(VerpKind.BOUNCE, 99_999), original_message_id=older.message_id or ""
    )
    (found,) = _find(engine, WITH_DOMAIN, (mail(), verdict))
    assert found.target is not None and found.target.delivery_id == older.id


def test_the_address_traces_providers_events_and_mail_only_without_a_bounce_domain(
    engine: Engine, two: tuple[Delivery, Delivery]
) -> None:
    _, newer = two
    verdict = Verdict(HARD, address="R0@EXAMPLE.ORG")
    esp, smtp = mail(source=Source.SES), mail()
    by_esp, by_mail = _find(engine, WITH_DOMAIN, (esp, verdict), (smtp, verdict))
    assert by_esp.target is not None and by_esp.target.delivery_id == newer.id  # the latest
    assert by_esp.reason == "by latest digest sent to the address"
    assert by_mail.target is None  # a bounce domain: mail must carry its token
    (found,) = _find(engine, WITHOUT_DOMAIN, (smtp, verdict))
    assert found.target is not None and found.target.delivery_id == newer.id


def test_the_address_lookup_goes_back_only_the_window_and_only_to_sent_digests(
    engine: Engine, session: Session, sent: Sent
) -> None:
    deliver(session, sent, "r0@example.org", NOW - timedelta(days=20))
    deliver(session, sent, "r1@example.org", NOW - timedelta(days=1), status="failed_permanent")
    found = _find(
        engine,
        WITHOUT_DOMAIN,
        (mail(), Verdict(HARD, address="r0@example.org")),
        (mail(), Verdict(HARD, address="r1@example.org")),
        (mail(), Verdict(HARD, address="nobody@example.org")),
        (mail(), Verdict(HARD, address="bad\x00@example.org")),
    )
    assert [f.target for f in found] == [None, None, None, None]
    assert found[0].reason == "no delivery identified: no digest sent to the address in 14 days"


def test_a_verdict_naming_somebody_else_is_foreign(
    engine: Engine, two: tuple[Delivery, Delivery]
) -> None:
    older, _ = two
    ref = VerpRef(VerpKind.BOUNCE, older.id or 0)
    found = _find(
        engine,
        WITH_DOMAIN,
        (mail(), Verdict(HARD, address="victim@example.org", verp=ref)),
        (mail(), Verdict(HARD, address="victim@example.org", also=("R0@example.org",), verp=ref)),
        (mail(), Verdict(HARD, verp=ref)),  # names nobody: the token decides
    )
    assert [f.foreign for f in found] == [True, False, False]
    assert "'victim@example.org', not the recipient of delivery" in found[0].reason


def test_hostile_message_ids_and_addresses_find_nothing_and_do_not_fail(
    engine: Engine, two: tuple[Delivery, Delivery]
) -> None:
    found = _find(
        engine,
        WITHOUT_DOMAIN,
        (mail(), Verdict(HARD, original_message_id="<\x00>")),
        (mail(), Verdict(HARD, original_message_id="x" * 5000)),
        (mail(), Verdict(HARD, address="y" * 5000 + "@example.org")),
        (mail(), Verdict(HARD, address="\u202eevil@example.org")),
    )
    assert [f.target for f in found] == [None] * 4
