"""One list's sending run (digest/send/run.py): under the list's lock, which it checks before
every batch, against a real SMTP server (aiosmtpd on loopback) on both databases."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.locks import Busy, DatabaseLock, LockLost, exclusive
from digest.db.models import Delivery
from digest.send.dispatcher import DispatchOptions, DispatchReport, RunHooks
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
LOCK = "send-daily"


def _world(session: Session, readers: int) -> World:
    world = make_world(session)
    for i in range(readers):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    return world


def _run(
    engine: Engine, world: World, settings: Settings, port: int, hooks: RunHooks
) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 1})
    settings = settings.model_copy(update={"smtp": smtp})
    options = RunOptions(DispatchOptions.from_settings(settings, batch_size=2), now=NOW)

    async def go() -> DispatchReport:
        return await send_list(engine, world.daily, SmtpSender(smtp), options, hooks)

    return asyncio.run(go())


def _break_lock(engine: Engine) -> None:
    """What an operator or the server does to a lock behind its holder's back: the lock
    file replaced (SQLite), the holding session ended (PostgreSQL, as `idle_session_timeout`
    or a failover would)."""
    lock = DatabaseLock(engine, LOCK)
    if lock.path is not None:
        os.replace(lock.path, lock.path.with_suffix(".old"))
        lock.path.touch()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        ended = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            )
        ).all()
    assert ended, "no session held the advisory lock"


def test_a_run_that_loses_its_lock_stops_before_the_next_batch_and_loses_nobody(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, readers=5)
    broken = False

    def stop() -> bool:  # called right after the run's own lock check, before each batch
        nonlocal broken
        if not broken and sink.messages:  # after the first batch: the second still goes out,
            broken = True  # the check before the third finds the lock gone
            _break_lock(engine)
        return False

    with SmtpSink() as sink:
        with pytest.raises(LockLost, match="no longer held"):
            _run(engine, world, settings, sink.port, RunHooks(clock=lambda: NOW, stop=stop))
        assert len(sink.messages) == 4  # two batches of 2, then nothing more
        session.expire_all()
        statuses = Counter(d.status for d in session.exec(select(Delivery)))
        assert statuses == {"sent": 4, "queued": 1}
        # The next run sends the rest, and nobody twice.
        _run(engine, world, settings, sink.port, RunHooks(clock=lambda: NOW))
        assert Counter(sink.recipients()) == Counter(f"r{i}@example.org" for i in range(5))


def test_a_second_run_of_the_same_list_is_refused_while_one_holds_the_lock(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = _world(session, readers=1)
    with SmtpSink() as sink, exclusive(engine, LOCK):
        with pytest.raises(Busy, match="another process is running send-daily"):
            _run(engine, world, settings, sink.port, RunHooks(clock=lambda: NOW))
        assert sink.messages == []
