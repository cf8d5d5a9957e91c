"""Dispatch end to end against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.outcome import Envelope, Outcome, SenderLifecycle
from digest.send.record import Attempt, OutcomeNotRecorded, Recorder, RecordOptions
from digest.send.smtp import SmtpSender
from digest.tracking.tokens import Purpose, Signer
from subscribers.models import Subscriber, Suppression
from subscribers.people import unsubscribe
from tests.helpers.paths import ROOT
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def _send(
    engine: Engine,
    world: World,
    settings: Settings,
    port: int,
    now: datetime = NOW,
    **options: object,
) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 3})
    settings = settings.model_copy(update={"smtp": smtp})
    opts = DispatchOptions.from_settings(settings, **options)

    async def go() -> DispatchReport:
        async with SmtpSender(smtp) as sender:
            dispatcher = Dispatcher(engine, world.daily, sender, opts, RunHooks(clock=lambda: now))
            return await dispatcher.run()

    return asyncio.run(go())


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_each_subscriber_gets_one_message_with_their_topics(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    for i in range(12):
        add_reader(session, world, f"p{i}@example.org", ["politics"], name=f"قارئ {i}")
    for i in range(6):
        add_reader(session, world, f"e{i}@example.org", ["economy"])
    add_reader(session, world, "both@example.org", ["economy", "politics"], locale="en")
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    add_article(session, world, "أسعار النفط", ["economy"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        report = _send(engine, world, settings, sink.port)
        assert (report.due, report.sent, report.segments) == (19, 19, 3)
        assert Counter(sink.recipients()) == Counter(
            [f"p{i}@example.org" for i in range(12)]
            + [f"e{i}@example.org" for i in range(6)]
            + ["both@example.org"]
        )
        assert sink.sessions() <= 3  # connections reused
        by_rcpt = {m.rcpt_tos[0]: _parse(m.data) for m in sink.messages}
        assert "انتخابات بلدية" in _text(by_rcpt["p0@example.org"])
        assert "أسعار النفط" not in _text(by_rcpt["p0@example.org"])
        assert "أسعار النفط" in _text(by_rcpt["e3@example.org"])
        both = _text(by_rcpt["both@example.org"])
        assert "انتخابات بلدية" in both and "أسعار النفط" in both
        assert by_rcpt["both@example.org"]["Content-Language"] == "en"
        # The one-click link carries a token that names this subscriber and this list.
        unsubscribe = by_rcpt["p0@example.org"]["List-Unsubscribe"]
        https = unsubscribe.split(",")[0].strip(" <>")
        assert https.startswith(settings.web.base_url + "/u/")
        ids = Signer(settings.web.secret_key).loads(Purpose.UNSUBSCRIBE, https.rsplit("/", 1)[1])
        assert ids[1] == world.daily.id
        # A second run the same day sends nothing.
        again = _send(engine, world, settings, sink.port, NOW + timedelta(minutes=5))
        assert (again.due, again.sent) == (0, 0)
        assert len(sink.messages) == 19
    session.expire_all()
    rows = session.exec(select(Delivery)).all()
    assert {r.status for r in rows} == {"sent"}
    assert all(r.message_id and r.smtp_code == 250 for r in rows)


def test_451_retried_550_suppressed_drop_retried_rest_unaffected(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    for name in ("ok1", "grey", "gone", "flaky", "ok2"):
        add_reader(session, world, f"{name}@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        sink.refuse("grey@example.org", 451, times=1)  # greylisting: accepted next time
        sink.refuse("gone@example.org", 550)
        sink.drop("flaky@example.org")
        report = _send(engine, world, settings, sink.port)
        assert (report.sent, report.temporary, report.permanent) == (2, 2, 1)
        assert sorted(sink.recipients()) == ["ok1@example.org", "ok2@example.org"]
        session.expire_all()
        status = {d.subscriber_id: (d.status, d.smtp_code) for d in session.exec(select(Delivery))}
        assert sorted(status.values(), key=str) == sorted(
            [
                ("sent", 250),
                ("sent", 250),
                ("failed_temporary", 451),
                ("failed_permanent", 550),
                ("failed_temporary", None),
            ],
            key=str,
        )
        assert [s.email for s in session.exec(select(Suppression))] == ["gone@example.org"]
        # Later the retries go out; the bounced address never again.
        later = _send(engine, world, settings, sink.port, NOW + timedelta(hours=1))
        assert later.sent == 2
        assert sorted(sink.recipients()) == sorted(
            ["ok1@example.org", "ok2@example.org", "grey@example.org", "flaky@example.org"]
        )


def test_smtp_server_down_names_host_and_port_and_marks_nothing_sent(
    engine: Engine, session: Session, settings: Settings
) -> None:
    import pytest

    from digest.send.smtp import SmtpUnavailable

    world = make_world(session)
    add_reader(session, world, "a@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        port = sink.port
    with pytest.raises(SmtpUnavailable, match=f"127.0.0.1:{port}"):
        _send(engine, world, settings, port)
    session.expire_all()
    assert session.exec(select(Delivery)).all() == []


def test_killed_send_loses_nobody_and_duplicates_at_most_what_was_in_flight(
    tmp_path: Path, db_url: str, engine: Engine, session: Session
) -> None:
    # Scenario: `digest send` is killed with SIGKILL mid-run, then started again.
    world = make_world(session, hour=0)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,topics,timezone,hour\n"
        + "".join(f"r{i}@example.org,,politics,UTC,0\n" for i in range(1500)),
        encoding="utf-8",
    )
    from subscribers.imports import ImportOptions, import_csv

    import_csv(
        engine, people, world.daily, {"politics": world.topic_id("politics")}, ImportOptions("UTC")
    )
    add_article(session, world, "خبر عاجل", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    script = Path(sys.executable).with_name("digest")
    connections = 4
    with SmtpSink() as sink:
        env = {
            **os.environ,
            "DIGEST_DATABASE__URL": db_url,
            "DIGEST_SMTP__PORT": str(sink.port),
            "DIGEST_SMTP__CONNECTIONS": str(connections),
            "DIGEST_SMTP__RATE": "500",
        }
        first = subprocess.Popen(
            [str(script), "send", "--list", "daily"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while len(sink.messages) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        received_before = len(sink.messages)
        assert 300 <= received_before < 1500, "the kill must land mid-run"
        env["DIGEST_SMTP__RATE"] = "0"
        second = subprocess.run(
            [str(script), "send", "--list", "daily", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 0, second.stderr
        counts = Counter(sink.recipients())
    assert set(counts) == {f"r{i}@example.org" for i in range(1500)}  # nobody missing
    duplicates = sum(n - 1 for n in counts.values())
    # Sent twice: the messages in the SMTP connections, and those whose outcomes were not yet
    # committed (at most a recorder batch pending, and what came in during its commit).
    assert duplicates <= connections + 2 * RecordOptions().batch
    session.expire_all()
    assert {d.status for d in session.exec(select(Delivery))} == {"sent"}


def test_an_address_that_cannot_be_sent_fails_alone(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: an address stored before today's checks whose domain has no punycode form
    # (a label past 63 octets): it cannot go into a header, nor on the wire.
    world = make_world(session)
    add_reader(session, world, "bad@example.org", ["politics"])
    add_reader(session, world, "ok@example.org", ["politics"])
    bad = session.exec(select(Subscriber).where(Subscriber.email == "bad@example.org")).one()
    bad.email = "bad@" + "ب" * 80 + ".org"
    session.add(bad)
    session.commit()
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    with SmtpSink() as sink:
        report = _send(engine, world, settings, sink.port)
        assert (report.sent, report.permanent) == (1, 1)
        assert sink.recipients() == ["ok@example.org"]
    session.expire_all()
    failed = [d for d in session.exec(select(Delivery)) if d.status == "failed_permanent"]
    assert len(failed) == 1 and "punycode" in (failed[0].smtp_message or "")
    assert session.exec(select(Suppression)).all() == []  # our limit, not a bounce


def test_dispatchers_racing_without_any_lock_send_each_digest_once(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: three senders on one list at once, none holding the list lock (as if two
    # schedulers both thought they led): planning is unique per (edition, subscriber) and
    # claiming is a compare-and-set, so nobody gets two messages.
    import threading

    from digest.db.engine import make_engine

    world = make_world(session)
    for i in range(120):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=1))
    reports: list[DispatchReport] = []

    with SmtpSink() as sink:

        def one_sender() -> None:
            own = make_engine(settings.database.url)  # a process of its own, as it were
            try:
                reports.append(_send(own, world, settings, sink.port, batch_size=20))
            finally:
                own.dispose()

        threads = [threading.Thread(target=one_sender) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = Counter(sink.recipients())
    assert len(reports) == 3
    assert set(counts) == {f"r{i}@example.org" for i in range(120)}
    assert max(counts.values()) == 1
    assert sum(r.sent for r in reports) == 120
    session.expire_all()
    assert {d.status for d in session.exec(select(Delivery))} == {"sent"}


def test_a_batch_whose_readers_all_left_does_not_end_the_run(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Batches of 5; the 7 readers first in the queue unsubscribed between planning and
    # sending: their whole first batch is skipped, and the 5 others still go out in this run.
    world = make_world(session)
    for i in range(12):
        add_reader(session, world, f"b{i}@example.org", ["politics"])
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    with SmtpSink() as sink:
        planned = _send(engine, world, settings, sink.port, plan_only=True)
        assert (planned.queued, planned.sent) == (12, 0)
        first = [d.subscriber_id for d in session.exec(select(Delivery).order_by(Delivery.id))]
        emails = {s.id: s.email for s in session.exec(select(Subscriber))}
        left = [emails[i] for i in first[:7]]
        for address in left:
            unsubscribe(session, address)
        session.commit()
        report = _send(engine, world, settings, sink.port, batch_size=5)
        assert (report.sent, report.skipped_unsubscribed) == (5, 7)
        assert sorted(sink.recipients()) == sorted(set(emails.values()) - set(left))
    session.expire_all()
    assert Counter(d.status for d in session.exec(select(Delivery))) == {"skipped": 7, "sent": 5}


class _Counting(SenderLifecycle):
    """A sender that accepts each message after a short pause; the first `failing` sends
    raise (a bug in a sender, say), the others succeed."""

    def __init__(self, failing: int = 0) -> None:
        self.failing = failing
        self.calls = 0
        self.accepted: list[str] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, envelope: Envelope) -> Outcome:
        self.calls += 1
        if self.calls <= self.failing:
            raise RuntimeError("sender bug")
        await asyncio.sleep(0.01)
        self.accepted.append(envelope.recipient)
        return Outcome("sent", 250, "ok")


def _dispatch(
    engine: Engine, world: World, sender: _Counting, options: DispatchOptions
) -> DispatchReport:
    async def go() -> DispatchReport:
        dispatcher = Dispatcher(engine, world.daily, sender, options, RunHooks(clock=lambda: NOW))
        return await dispatcher.run()

    return asyncio.run(go())


def test_while_outcomes_cannot_be_recorded_at_most_a_batch_more_goes_out(
    engine: Engine, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database is away for good: the recorder retries, then gives up. Meanwhile the send
    # loop waits once `batch` outcomes are uncommitted, so only those (and the messages in
    # flight) can be sent again by the next run, not the whole claimed batch of 200.
    world = make_world(session)
    for i in range(200):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=2))

    def unreachable(recorder: Recorder, attempts: list[Attempt]) -> list[str]:
        raise OperationalError("UPDATE delivery", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Recorder, "_commit", unreachable)
    record = RecordOptions(batch=10, patience=0.2)
    options = DispatchOptions.from_settings(settings, concurrency=4, record=record)
    sender = _Counting()
    with pytest.raises(OutcomeNotRecorded, match="database stayed unreachable"):
        _dispatch(engine, world, sender, options)
    assert 0 < len(sender.accepted) <= record.batch + options.concurrency
    session.expire_all()
    assert len(session.exec(select(Delivery)).all()) == 200  # nobody lost
    assert not [d for d in session.exec(select(Delivery)) if d.status == "sent"]


def test_a_send_that_raises_stops_the_batch_and_every_accepted_message_is_recorded(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    for i in range(6):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOW - timedelta(hours=2))
    sender = _Counting(failing=1)
    options = DispatchOptions.from_settings(settings, concurrency=3)

    async def go() -> BaseException | None:
        dispatcher = Dispatcher(engine, world.daily, sender, options, RunHooks(clock=lambda: NOW))
        try:
            await dispatcher.run()
        except RuntimeError as exc:
            error: BaseException | None = exc
        else:
            error = None
        # A long-lived process (the scheduler) goes on: any send task left running would
        # finish now, after its batch was closed. Bounded wait for them.
        for _ in range(200):
            if len(asyncio.all_tasks()) == 1:
                break
            await asyncio.sleep(0.01)
        return error

    error = asyncio.run(go())
    assert isinstance(error, RuntimeError) and "sender bug" in str(error)
    session.expire_all()
    rows = session.exec(select(Delivery, Subscriber).join(Subscriber)).all()
    sent = {s.email for d, s in rows if d.status == "sent"}
    assert sent == set(sender.accepted)  # what went out is known: not sent twice later
    assert len(sender.accepted) < 6  # the others took no new message after the error
