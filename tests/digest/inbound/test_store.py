"""The inbound record (digest/inbound/store.py): raw messages stored once by their SHA-256,
providers' events once by their id, and the raw bytes purged after keep_days while the
events stay."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.engine import make_engine
from digest.db.models import InboundEvent, InboundKind, InboundMessage
from digest.inbound.process import Processor
from digest.inbound.store import purge_raw, sha256_of
from digest.inbound.verdicts import Received, Source, Verdict
from tests.helpers.sent import NOW

AUTO = Verdict(InboundKind.AUTO_REPLY, address="away@example.org")


def _processor(engine: Engine, settings: Settings) -> Processor:
    return Processor(engine, settings, clock=lambda: NOW)


def test_the_same_bytes_twice_are_processed_once(
    engine: Engine, session: Session, settings: Settings
) -> None:
    raw = b"From: away@example.org\r\n\r\nI am away\r\n"
    received = Received(raw, Source.SMTP, "", ("postmaster@bounces.example.org",))
    processor = _processor(engine, settings)
    first, in_batch = processor.apply([(received, AUTO), (received, AUTO)])
    (later,) = processor.apply([(Received(raw, Source.IMAP), AUTO)])
    assert (first.duplicate, in_batch.duplicate, later.duplicate) == (False, True, True)
    assert in_batch.event_id == later.event_id == first.event_id
    assert later.action == "none: duplicate"
    (message,) = session.exec(select(InboundMessage)).all()
    assert (message.sha256, message.size, message.raw, message.source) == (
        sha256_of(raw),
        len(raw),
        raw,
        "smtp",
    )
    assert message.envelope_to == "postmaster@bounces.example.org"
    (event,) = session.exec(select(InboundEvent)).all()
    assert (event.message_id, event.kind, event.action) == (
        message.id,
        "auto_reply",
        "none: auto-reply",
    )


def test_provider_events_are_deduplicated_by_their_id_and_share_one_payload(
    engine: Engine, session: Session, settings: Settings
) -> None:
    payload = Received(
        b'[{"event": "bounce", "id": "a"}, {"event": "bounce", "id": "b"}]', Source.SENDGRID
    )
    one = Verdict(InboundKind.UNKNOWN, external_id="a", reason="unknown address")
    two = Verdict(InboundKind.UNKNOWN, external_id="b", reason="unknown address")
    processor = _processor(engine, settings)
    handled = processor.apply([(payload, one), (payload, two), (payload, one)])
    assert [h.duplicate for h in handled] == [False, False, True]
    assert handled[2].event_id == handled[0].event_id
    # The provider sends event b again, in another payload.
    again = Received(b'[{"event": "bounce", "id": "b"}]', Source.SENDGRID)
    (repeat,) = processor.apply([(again, two)])
    assert (repeat.duplicate, repeat.event_id) == (True, handled[1].event_id)
    assert len(session.exec(select(InboundMessage)).all()) == 1  # the second payload: nothing new
    events = session.exec(select(InboundEvent).order_by(InboundEvent.id)).all()
    assert [(e.external_id, e.source) for e in events] == [("a", "sendgrid"), ("b", "sendgrid")]
    assert events[0].message_id == events[1].message_id is not None


def test_purging_deletes_old_raw_messages_and_keeps_their_events(
    engine: Engine, session: Session, settings: Settings
) -> None:
    processor = _processor(engine, settings)
    old = [
        Received(f"old {i}".encode(), Source.FILE, received_at=NOW - timedelta(days=40))
        for i in range(5)
    ]
    new = Received(b"new", Source.FILE, received_at=NOW - timedelta(days=1))
    processor.apply([(r, AUTO) for r in [*old, new]])
    assert purge_raw(engine, NOW - timedelta(days=30), chunk=2) == 5
    session.expire_all()
    assert [m.raw for m in session.exec(select(InboundMessage))] == [b"new"]
    events = session.exec(select(InboundEvent)).all()
    assert len(events) == 6
    assert sum(e.message_id is None for e in events) == 5
    assert purge_raw(engine, NOW - timedelta(days=30)) == 0
    assert purge_raw(engine, NOW, stop=lambda: True) == 0


def test_outside_text_is_stored_cleaned_and_bounded(
    engine: Engine, session: Session, settings: Settings
) -> None:
    verdict = Verdict(
        InboundKind.UNKNOWN,
        address="a\u202e@example.org\x00",
        status="5.1.1\n" + "9" * 40,
        smtp_code=10**12,
        diagnostic="line one\r\nline two\x00" + "x" * 5000,
        reason="r" * 5000,
        external_id="id\x00" + "e" * 1000,
    )
    received = Received(
        b"x", Source.MAILGUN, envelope_from="\x00" * 5000, envelope_to=("t",) * 3000
    )
    (handled,) = _processor(engine, settings).apply([(received, verdict)])
    event = session.get(InboundEvent, handled.event_id)
    assert event is not None
    assert event.address == "a@example.org"
    assert event.smtp_code is None
    assert event.diagnostic.startswith("line one  line two") and len(event.diagnostic) == 1000
    assert len(event.reason) == 300 and len(event.status) <= 16
    assert (
        event.external_id is not None
        and len(event.external_id) == 255
        and "\x00" not in event.external_id
    )


def test_two_processes_storing_the_same_messages_at_once_process_each_once(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Both read "not stored yet", one commits first: the other's insert hits the unique
    # sha256 and its batch runs again, finding them stored (duplicates).
    batch = [(Received(f"same {i}".encode(), Source.SMTP), AUTO) for i in range(20)]
    together = threading.Barrier(2)
    results: list[list[bool]] = []

    def run() -> None:
        other = make_engine(settings.database.url)
        try:
            together.wait()
            results.append([h.duplicate for h in _processor(other, settings).apply(batch)])
        finally:
            other.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert [a != b for a, b in zip(*results, strict=True)] == [True] * 20
    assert len(session.exec(select(InboundMessage)).all()) == 20
    assert len(session.exec(select(InboundEvent)).all()) == 20


def test_provider_events_without_an_id_in_one_payload_are_each_recorded(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Two events of one payload share its bytes; neither carries an id: both count, once.
    payload = Received(b'[{"event": "a"}, {"event": "b"}]', Source.SENDGRID)
    one = Verdict(InboundKind.AUTO_REPLY, address="a@example.org")
    two = Verdict(InboundKind.AUTO_REPLY, address="b@example.org")
    processor = _processor(engine, settings)
    handled = processor.apply([(payload, one), (payload, two)])
    assert [h.duplicate for h in handled] == [False, False]
    again = processor.apply([(payload, one), (payload, two)])  # the provider sends it again
    assert [h.duplicate for h in again] == [True, True]
    assert len(session.exec(select(InboundEvent)).all()) == 2
    assert len(session.exec(select(InboundMessage)).all()) == 1
