"""Runs the breaker stops (digest/send/halt.py): a relay that refuses everyone, a sender it
refuses, a server that throttles or stalls, against aiosmtpd answering the exact replies; on
both databases, through `digest send`'s run and a PostgreSQL worker."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.locks import exclusive
from digest.db.models import Delivery, Edition, EditorAction
from digest.editions.workflow import release
from digest.send import dispatcher as dispatcher_module
from digest.send.breaker import BreakerTripped
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport, RunHooks
from digest.send.run import RunOptions, send_list
from digest.send.smtp import Pacer, SmtpSender
from digest.send.worker import Worker, WorkerOptions
from subscribers.models import Suppression
from tests.helpers.databases import ON_POSTGRES
from tests.helpers.smtp_sink import EVERYONE, SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def _world(session: Session, readers: int) -> World:
    world = make_world(session)
    for i in range(readers):
        add_reader(session, world, f"r{i}@example{i % 7}.org", ["politics"])
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    return world


def _settings(settings: Settings, port: int, **smtp: object) -> Settings:
    values = {"port": port, "connections": 4, "timeout": 5.0, **smtp}
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update=values)})


def _run(engine: Engine, world: World, settings: Settings, now: datetime = NOW) -> DispatchReport:
    options = RunOptions(DispatchOptions.from_settings(settings), now=now)
    # Throttling pauses of a few milliseconds, not seconds: the test times nothing.
    sender = SmtpSender(settings.smtp, pacer=Pacer(0, pause=0.01, max_pause=0.01))
    return asyncio.run(send_list(engine, world.daily, sender, options, RunHooks(clock=lambda: now)))


def _statuses(session: Session) -> Counter[str]:
    session.expire_all()
    return Counter(d.status for d in session.exec(select(Delivery)))


def _held(session: Session) -> list[Edition]:
    return list(session.exec(select(Edition).where(Edition.status == "held")))


def test_a_relay_answering_a_bare_550_to_everyone_suppresses_nobody_and_holds_the_edition(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: 300 of 300 subscribers were marked failed and suppressed in 1.7 s.
    world = _world(session, 300)
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 550, reply="550")
        smtp = _settings(settings, sink.port)
        with pytest.raises(BreakerTripped) as stopped:
            _run(engine, world, smtp)
    message = str(stopped.value)
    assert "of the last 20 messages refused permanently (100%, threshold 50%" in message
    assert "'550' ×" in message and "Nothing was suppressed" in message
    assert "300 deliveries went back to the queue" in message
    assert "smtp.host (127.0.0.1:" in message and "digest editions release" in message
    assert session.exec(select(Suppression)).all() == []
    assert _statuses(session) == {"queued": 300}  # nothing failed, nothing left `sending`
    (edition,) = _held(session)
    action = session.exec(select(EditorAction).where(EditorAction.actor == "breaker")).one()
    assert action.edition_id == edition.id and action.action == "hold"
    assert "refused permanently" in action.detail
    with exclusive(engine, f"send-{world.daily.slug}"):
        pass  # the run let go of the list's lock

    # The relay fixed, an editor releases the edition: everyone gets their digest, once.
    release(session, edition.id or 0, actor="editor@example.org", now=NOW)
    session.commit()
    with SmtpSink() as fixed:
        report = _run(engine, world, _settings(settings, fixed.port), NOW + timedelta(minutes=5))
        assert report.sent == 300 and len(set(fixed.recipients())) == 300


@pytest.mark.parametrize(
    ("at", "reply"),
    [
        ("RCPT", "550 5.7.1 <r@example.org>: relaying denied"),
        ("RCPT", "550 5.1.1 <r@example.org>: Recipient address rejected: User unknown"),
        ("MAIL", "553 5.1.8 <digest@news.example.org>: Sender address rejected"),
    ],
    ids=["relaying-denied", "pointed-at-an-mx", "sender-refused"],
)
def test_refusals_of_many_unrelated_readers_stop_the_run_before_anyone_is_suppressed(
    engine: Engine, session: Session, settings: Settings, at: str, reply: str
) -> None:
    world = _world(session, 60)
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, int(reply[:3]), at=at, reply=reply)  # type: ignore[arg-type]
        with pytest.raises(BreakerTripped, match="refused permanently") as stopped:
            _run(engine, world, _settings(settings, sink.port))
    hint = "refuses to relay" if "5.1.1" not in reply else "not a recipient's mail server"
    assert hint in str(stopped.value)
    assert session.exec(select(Suppression)).all() == []
    statuses = _statuses(session)
    assert "failed_permanent" not in statuses and "sending" not in statuses
    assert len(_held(session)) == 1


def test_a_refused_sender_in_a_short_run_fails_no_reader_and_suppresses_nobody(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: `553 5.1.8` at MAIL FROM suppressed the recipient. Too few messages for the
    # breaker to judge: each delivery stays retryable and nobody is suppressed.
    world = _world(session, 5)
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 553, at="MAIL", reply="553 5.1.8 Domain of sender does not exist")
        report = _run(engine, world, _settings(settings, sink.port))
    assert (report.temporary, report.permanent) == (5, 0)
    assert _statuses(session) == {"failed_temporary": 5}
    assert session.exec(select(Suppression)).all() == []


def test_a_real_bounce_in_a_healthy_run_is_still_suppressed_with_where_it_came_from(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, 30)
    with SmtpSink() as sink:
        sink.refuse("r3@example3.org", 550)
        report = _run(engine, world, _settings(settings, sink.port))
    assert (report.sent, report.permanent) == (29, 1)
    (suppression,) = session.exec(select(Suppression)).all()
    delivery = session.exec(select(Delivery).where(Delivery.status == "failed_permanent")).one()
    assert (suppression.email, suppression.smtp_code, suppression.enhanced) == (
        "r3@example3.org",
        550,
        "5.1.1",
    )
    assert (suppression.delivery_id, suppression.edition_id, suppression.list_id) == (
        delivery.id,
        delivery.edition_id,
        world.daily.id,
    )


def test_a_server_that_throttles_forever_stops_the_run_and_releases_the_lock(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, 60)
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 421)  # "421 4.7.28 slow down", and the connection closes
        smtp = _settings(settings, sink.port, breaker_min_messages=10)
        with pytest.raises(BreakerTripped, match="timed out, were cut off or throttled"):
            _run(engine, world, smtp)
    assert len(_held(session)) == 1
    statuses = _statuses(session)
    assert set(statuses) == {"queued", "failed_temporary"}  # all to be sent again
    with exclusive(engine, f"send-{world.daily.slug}"):
        pass


def test_a_server_that_stalls_beyond_the_timeout_stops_the_run(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, 40)
    with SmtpSink() as sink:
        sink.stall(EVERYONE, 5.0, times=None)  # answers DATA long after our timeout
        smtp = _settings(settings, sink.port, timeout=0.3, breaker_min_messages=8)
        with pytest.raises(BreakerTripped, match=r"smtp\.timeout") as stopped:
            _run(engine, world, smtp)
    assert "no answer at DATA" in str(stopped.value)
    assert len(_held(session)) == 1
    assert "sending" not in _statuses(session)


@pytest.mark.skipif(not ON_POSTGRES, reason="digest worker runs on PostgreSQL")
def test_a_worker_whose_relay_refuses_everyone_holds_the_edition_and_suppresses_nobody(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, 120)
    planning = DispatchOptions.from_settings(settings, plan_only=True)
    hooks = RunHooks(clock=lambda: NOW)
    asyncio.run(Dispatcher(engine, world.daily, SmtpSender(settings.smtp), planning, hooks).run())
    assert _statuses(session) == {"queued": 120}
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 550, reply="550 relay not permitted")
        smtp = _settings(settings, sink.port)
        worker = Worker(
            engine,
            SmtpSender(smtp.smtp),
            DispatchOptions.from_settings(smtp),
            WorkerOptions(batch=50, lease=timedelta(seconds=60), poll_seconds=0.05, name="w1"),
            clock=lambda: NOW,
        )
        asyncio.run(worker.run(once=True))  # trips, then finds nothing claimable: stops
    assert worker.trips == 1
    assert session.exec(select(Suppression)).all() == []
    statuses = _statuses(session)  # relay refusals are retryable: failed_temporary
    assert set(statuses) <= {"queued", "failed_temporary"} and statuses.total() == 120
    assert len(_held(session)) == 1


def test_a_relay_going_bad_late_in_a_run_across_batch_boundaries_suppresses_nobody(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: batches of 40 and a relay answering `550 5.1.1` to everyone from message 481:
    # the batch ending at 520 held 40 refusals the breaker had not judged yet, recorded them
    # (40 readers suppressed), and only then did the next batch trip.
    world = _world(session, 600)
    with SmtpSink() as sink:

        def progress(done: int, queued: int) -> None:
            if done == 480:  # the relay goes bad between two batches
                sink.refuse(EVERYONE, 550, reply="550 5.1.1 <r@example.org>: User unknown")

        smtp = _settings(settings, sink.port)
        options = RunOptions(DispatchOptions.from_settings(smtp, batch_size=40), now=NOW)
        sender = SmtpSender(smtp.smtp)
        hooks = RunHooks(clock=lambda: NOW, progress=progress)
        with pytest.raises(BreakerTripped, match="refused permanently"):
            asyncio.run(send_list(engine, world.daily, sender, options, hooks))
    assert session.exec(select(Suppression)).all() == []
    statuses = _statuses(session)
    assert statuses["sent"] == 480 and "failed_permanent" not in statuses
    assert set(statuses) == {"sent", "queued"} and len(_held(session)) == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="digest worker runs on PostgreSQL")
def test_a_worker_sending_small_batches_to_a_relay_refusing_everyone_suppresses_nobody(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # Scenario: per-list slices of 4 rows each settled their refusals at their end: 16
    # readers suppressed before the breaker (min 20) could trip.
    world = _world(session, 60)
    planning = DispatchOptions.from_settings(settings, plan_only=True)
    hooks = RunHooks(clock=lambda: NOW)
    asyncio.run(Dispatcher(engine, world.daily, SmtpSender(settings.smtp), planning, hooks).run())
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 550, reply="550 5.1.1 <r@example.org>: User unknown")
        smtp = _settings(settings, sink.port)
        worker = Worker(
            engine,
            SmtpSender(smtp.smtp),
            DispatchOptions.from_settings(smtp),
            WorkerOptions(batch=4, lease=timedelta(seconds=60), poll_seconds=0.05, name="w1"),
            clock=lambda: NOW,
        )
        asyncio.run(worker.run(once=True))
    assert worker.trips == 1
    assert session.exec(select(Suppression)).all() == []
    assert _statuses(session) == {"queued": 60} and len(_held(session)) == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="digest worker runs on PostgreSQL")
def test_a_worker_whose_halt_loses_the_database_sends_its_next_batch_afresh(
    engine: Engine, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scenario: the breaker tripped and the database went away while halting: the breaker
    # stayed tripped, so the next batch sent nothing and held its edition anyway.
    world = _world(session, 60)
    planning = DispatchOptions.from_settings(settings, plan_only=True)
    hooks = RunHooks(clock=lambda: NOW)
    asyncio.run(Dispatcher(engine, world.daily, SmtpSender(settings.smtp), planning, hooks).run())
    halts: list[bool] = []

    def database_away(*args: object, **kwargs: object) -> BreakerTripped:
        halts.append(True)
        raise OperationalError("UPDATE delivery", {}, Exception("server closed the connection"))

    monkeypatch.setattr(dispatcher_module, "halt", database_away)
    with SmtpSink() as sink:
        sink.refuse(EVERYONE, 550, times=20, reply="550 5.1.1 <r@example.org>: User unknown")
        smtp = _settings(settings, sink.port, connections=1)
        worker = Worker(
            engine,
            SmtpSender(smtp.smtp),
            DispatchOptions.from_settings(smtp),
            WorkerOptions(batch=50, lease=timedelta(seconds=60), poll_seconds=0.05, name="w1"),
            clock=lambda: NOW,
        )
        asyncio.run(worker.run(once=True))  # trips, cannot halt; the relay is fine again
    assert halts == [True] and worker.trips == 0
    assert session.exec(select(Suppression)).all() == []
    statuses = _statuses(session)  # the first batch waits for its lease to run out
    assert statuses == {"sending": 50, "sent": 10} and _held(session) == []
