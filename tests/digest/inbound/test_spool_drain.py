"""The spool's drain (digest/inbound/spool_drain.py) with the real Processor on SQLite (or
PostgreSQL): files go only once committed, a locked database keeps them, duplicates count
once, a poisonous message is set aside alone."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from digest.config import Settings
from digest.db.engine import make_engine
from digest.db.tables import INBOUND_EVENT, INBOUND_MESSAGE
from digest.inbound.process import InboundUnavailable, Processor
from digest.inbound.spool import Spool
from digest.inbound.spool_drain import Drain, DrainOptions
from digest.inbound.verdicts import Received, Source
from tests.helpers.dblock import write_locked

QUICK = DrainOptions(idle_wait=0.05, first_pause=0.05, max_pause=0.2, stop_grace=5.0)


def _mail(tag: str) -> Received:
    raw = f"From: someone@example.net\r\nSubject: {tag}\r\n\r\nhello\r\n".encode()
    return Received(raw, Source.SMTP, envelope_to=("postmaster@bounces.example.org",))


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool")
    spool.open()
    yield spool
    spool.close()


def _processor(settings: Settings) -> tuple[Processor, Engine]:
    database = settings.database.model_copy(update={"busy_timeout_seconds": 0.2})
    quick = settings.model_copy(update={"database": database})
    engine = make_engine(settings.database.url, busy_timeout_seconds=0.2)
    return Processor(engine, quick), engine


def test_a_locked_database_keeps_the_files_until_it_frees(
    settings: Settings, engine: Engine, spool: Spool
) -> None:
    processor, quick = _processor(settings)
    drain = Drain(spool, processor.process, unavailable=(InboundUnavailable,), options=QUICK)
    try:
        spool.write([_mail("one"), _mail("two")])
        spool.write([_mail("three")])
        with write_locked(engine):
            outcome = drain.once()
            assert outcome is not None and outcome.unavailable
            assert len(spool.waiting()) == 2  # nothing removed, nothing half-written
        assert _count(engine, INBOUND_MESSAGE) == 0
        outcome = drain.once()
        assert outcome is not None and outcome.processed == 3
        assert spool.waiting() == [] and drain.once() is None
        assert _count(engine, INBOUND_EVENT) == 3
    finally:
        quick.dispose()


def test_the_same_bytes_twice_and_a_file_read_again_after_a_crash_count_once(
    settings: Settings, engine: Engine, spool: Spool, tmp_path: Path
) -> None:
    drain = Drain(spool, Processor(engine, settings).process, unavailable=(InboundUnavailable,))
    path = spool.write([_mail("same"), _mail("same")])
    copy = tmp_path / "copy"
    shutil.copy(path, copy)
    assert drain.once() is not None
    # A crash after the commit, before the removal: the file is read again at the start.
    shutil.copy(copy, path)
    assert drain.once() is not None
    assert spool.waiting() == []
    assert (_count(engine, INBOUND_MESSAGE), _count(engine, INBOUND_EVENT)) == (1, 1)


def test_large_backlogs_go_in_batches_of_whole_files(spool: Spool) -> None:
    batches: list[int] = []

    def process(batch: Sequence[Received]) -> None:
        batches.append(len(batch))

    for n in range(10):
        spool.write([_mail(f"{n}.{i}") for i in range(3)])
    options = DrainOptions(max_batch=10)
    drain = Drain(spool, process, unavailable=(InboundUnavailable,), options=options)
    while drain.once() is not None:
        pass
    assert batches == [9, 9, 9, 3]  # whole files, never past max_batch
    assert drain.processed == 30


def test_a_batch_closes_at_its_byte_cap_whatever_its_count(spool: Spool) -> None:
    # Messages near max_message_bytes: memory stays flat, one file past the cap goes alone.
    batches: list[int] = []

    def process(batch: Sequence[Received]) -> None:
        batches.append(len(batch))

    big = b"From: someone@example.net\r\n\r\n" + b"x" * 4_000
    for n in range(5):
        spool.write([Received(big + str(n).encode(), Source.SMTP)])
    spool.write([Received(big * 3, Source.SMTP)])
    options = DrainOptions(max_batch=100, max_bytes=10_000)
    drain = Drain(spool, process, unavailable=(InboundUnavailable,), options=options)
    while drain.once() is not None:
        pass
    assert batches == [2, 2, 1, 1]


def test_a_poisonous_message_is_set_aside_alone(spool: Spool) -> None:
    done: list[bytes] = []

    def process(batch: Sequence[Received]) -> None:
        if any(b"poison" in received.raw for received in batch):
            raise ValueError("a reader bug")
        done.extend(received.raw for received in batch)

    spool.write([_mail("a"), _mail("poison"), _mail("b")])
    drain = Drain(spool, process, unavailable=(InboundUnavailable,))
    assert drain.once() is not None
    assert len(done) == 2 and spool.waiting() == []
    (kept,) = spool.bad.iterdir()
    assert [received.raw for received in spool.read(kept) or []] == [_mail("poison").raw]


def test_run_drains_until_stopped_and_leaves_what_it_cannot_store(
    settings: Settings, engine: Engine, spool: Spool
) -> None:
    processor, quick = _processor(settings)
    drain = Drain(spool, processor.process, unavailable=(InboundUnavailable,), options=QUICK)
    wake, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=drain.run, args=(wake, stop))
    thread.start()
    try:
        spool.write([_mail("one")])
        wake.set()
        with write_locked(engine):
            spool.write([_mail("two")])
            wake.set()
            stop.set()  # stopping while the database is locked: the file waits
            thread.join(30)
            assert not thread.is_alive()
        assert spool.waiting(), "the locked batch stays spooled for the next start"
        assert _count(engine, INBOUND_MESSAGE) <= 1
        # The next start drains the leftovers first.
        again = Drain(spool, processor.process, unavailable=(InboundUnavailable,), options=QUICK)
        again.finish()
        assert spool.waiting() == []
        assert _count(engine, INBOUND_MESSAGE) == 2
    finally:
        stop.set()
        thread.join(30)
        quick.dispose()
