"""Processing batches (digest/inbound/process.py): real messages read by the classifier and
applied; one transaction per batch, all or nothing; a database that is locked or away is
InboundUnavailable with nothing written, and the same batch goes through afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.engine import make_engine
from digest.db.models import Delivery, InboundEvent, InboundKind, InboundMessage
from digest.inbound import process as process_module
from digest.inbound.process import InboundUnavailable, Processor
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.verp import VerpKind
from subscribers.models import Suppression
from tests.helpers.dblock import write_locked
from tests.helpers.sent import NOW, Sent, bounce, deliver, mail, sent_world, verp_of


def _dsn(recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\n"
        "To: bounces@news.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-" + message_id.strip("<>") + ">\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nTo: {recipient}\r\nSubject: digest\r\n"
        "\r\n--B--\r\n"
    ).encode()


def _auto_reply() -> bytes:
    return (
        b"From: r1@example.org\r\nTo: news@example.org\r\nSubject: Out of office\r\n"
        b"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.org>\r\n\r\nAway.\r\n"
    )


@pytest.fixture
def sent(session: Session) -> Sent:
    return sent_world(session, 3)


def _written(session: Session) -> tuple[int, int, int]:
    session.expire_all()
    return (
        len(session.exec(select(InboundMessage)).all()),
        len(session.exec(select(InboundEvent)).all()),
        len(session.exec(select(Suppression)).all()),
    )


def test_real_messages_are_read_and_applied(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=1))
    verp = verp_of(settings)
    to_verp = (verp.address(VerpKind.BOUNCE, delivery.id or 0),)
    batch = [
        Received(_dsn("r0@example.org", delivery.message_id or ""), Source.SMTP, "", to_verp),
        Received(_auto_reply(), Source.SMTP, "r1@example.org", ("postmaster@bounces.example.org",)),
        Received(b"\xff\xfe garbage", Source.FILE),
    ]
    handled = Processor(engine, settings, clock=lambda: NOW).process(batch)
    assert [h.kind for h in handled] == [
        InboundKind.HARD_BOUNCE,
        InboundKind.AUTO_REPLY,
        InboundKind.UNKNOWN,
    ]
    assert (handled[0].action, handled[0].delivery_id) == ("suppressed", delivery.id)
    (row,) = session.exec(select(Suppression)).all()
    assert (row.email, row.reason, row.enhanced) == ("r0@example.org", "hard_bounce", "5.1.1")
    assert _written(session) == (3, 3, 1)


def test_an_empty_batch_does_nothing(engine: Engine, settings: Settings) -> None:
    assert Processor(engine, settings).apply([]) == []


def test_a_batch_that_fails_part_way_leaves_nothing_written(
    engine: Engine,
    session: Session,
    settings: Settings,
    sent: Sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=1))
    batch = [(mail(), bounce(InboundKind.HARD_BOUNCE, delivery, settings))]

    def cut_off(*_args: object, **_kwargs: object) -> object:  # the last step of the batch
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patched:
        patched.setattr(process_module, "apply_brake", cut_off)
        with pytest.raises(InboundUnavailable, match="nothing written"):
            Processor(engine, settings, clock=lambda: NOW).apply(batch)
    assert _written(session) == (0, 0, 0)
    (handled,) = Processor(engine, settings, clock=lambda: NOW).apply(batch)
    assert (handled.action, handled.duplicate) == ("suppressed", False)


@pytest.mark.sqlite_only
def test_a_database_locked_past_its_busy_timeout_is_unavailable_and_nothing_is_written(
    engine: Engine, session: Session, settings: Settings, sent: Sent
) -> None:
    delivery = deliver(session, sent, "r0@example.org", NOW - timedelta(hours=1))
    batch = [
        (mail(), Verdict(InboundKind.AUTO_REPLY)),
        (mail(), bounce(InboundKind.HARD_BOUNCE, delivery, settings)),
        (mail(), bounce(InboundKind.COMPLAINT, delivery, settings)),
    ]
    impatient = make_engine(settings.database.url, busy_timeout_seconds=0.2)
    try:
        with write_locked(engine), pytest.raises(InboundUnavailable, match="3 inbound message"):
            Processor(impatient, settings, clock=lambda: NOW).apply(batch)
        assert _written(session) == (0, 0, 0)
        handled = Processor(impatient, settings, clock=lambda: NOW).apply(batch)
    finally:
        impatient.dispose()
    assert [h.duplicate for h in handled] == [False, False, False]
    assert _written(session) == (3, 3, 1)
    session.expire_all()
    assert session.get(Delivery, delivery.id).status == "sent"  # type: ignore[union-attr]


def test_an_unreachable_database_is_unavailable(settings: Settings) -> None:
    away = make_engine("postgresql+psycopg://digest@127.0.0.1:1/digest")
    try:
        with pytest.raises(InboundUnavailable):
            Processor(away, settings).apply([(mail(), Verdict(InboundKind.UNKNOWN))])
    finally:
        away.dispose()
