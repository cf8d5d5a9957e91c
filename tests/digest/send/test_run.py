"""One list's sending run (digest/send/run.py): under the list's lock, which it checks before
every batch, against a real SMTP server (aiosmtpd on loopback) on both databases; a signed
run of 1,000 messages that dkimpy and Perl's Mail::DKIM verify one by one."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from digest.config import DkimSettings, Settings
from digest.db.locks import Busy, DatabaseLock, LockLost, exclusive
from digest.db.models import Delivery
from digest.send.dispatcher import DispatchOptions, DispatchReport, RunHooks
from digest.send.run import RunOptions, send_list
from digest.send.smtp import SmtpSender
from tests.helpers.dkim import (
    dkimpy_results,
    key_file,
    perl_results,
    records,
)
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
LOCK = "send-daily"


def _world(session: Session, readers: int, name: str = "") -> World:
    world = make_world(session)
    for i in range(readers):
        add_reader(session, world, f"r{i}@example.org", ["politics"], name=name.format(i))
    add_article(session, world, "انتخابات بلدية", ["politics"], NOW - timedelta(hours=2))
    return world


def _run(
    engine: Engine,
    world: World,
    settings: Settings,
    port: int,
    hooks: RunHooks,
    batch_size: int = 2,
    connections: int = 1,
) -> DispatchReport:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": connections})
    settings = settings.model_copy(update={"smtp": smtp})
    options = RunOptions(DispatchOptions.from_settings(settings, batch_size=batch_size), now=NOW)

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


@pytest.mark.parametrize("kinds", [("rsa",), ("ed25519",), ("ed25519", "rsa")])
def test_every_message_of_a_signed_run_verifies_with_dkimpy_and_mail_dkim(
    engine: Engine, session: Session, settings: Settings, tmp_path: Path, kinds: tuple[str, ...]
) -> None:
    keys = {f"s{n}": key_file(tmp_path / f"s{n}.pem", kind) for n, kind in enumerate(kinds)}
    paths = {"private_key_path": str(tmp_path / "s0.pem"), "selector": "s0"}
    if len(kinds) == 2:
        paths |= {"second_private_key_path": str(tmp_path / "s1.pem"), "second_selector": "s1"}
    signed = settings.model_copy(update={"dkim": DkimSettings(**paths)})
    published = records(keys, signed.sender.from_address.rpartition("@")[2])
    # Arabic names long enough that To is folded; the subject and List-Id are Arabic too.
    world = _world(session, readers=1000, name="القارئ رقم {} من مدينة الإسكندرية الساحلية")
    with SmtpSink() as sink:
        hooks = RunHooks(clock=lambda: NOW)
        report = _run(engine, world, signed, sink.port, hooks, batch_size=500, connections=4)
        messages = [received.data for received in sink.messages]
    assert report.sent == len(messages) == 1000
    assert all(m.count(b"DKIM-Signature: ") == len(kinds) for m in messages)
    assert b"\r\nTo: =?utf-8?b?" in messages[0] and b"\r\nList-Unsubscribe-Post: " in messages[0]
    assert all(dkimpy_results(m, published) == [True] * len(kinds) for m in messages)
    perl = perl_results(messages, published, tmp_path / "perl")
    for verdict in perl:
        assert all(verdict[f"{kind}-sha256"] == "pass" for kind in kinds), verdict
    # One body byte, or the one-click header, changed: both verifiers say no.
    body = messages[0][:-40] + bytes([messages[0][-40] ^ 1]) + messages[0][-39:]
    post = messages[0].replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click")
    for changed in (body, post):
        assert dkimpy_results(changed, published) == [False] * len(kinds)
    for verdict in perl_results([body, post], published, tmp_path / "tampered"):
        assert all(verdict[f"{kind}-sha256"].startswith("fail") for kind in kinds), verdict
