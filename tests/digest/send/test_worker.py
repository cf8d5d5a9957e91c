"""`digest worker`: many processes, one PostgreSQL, every digest sent once, none lost.

These tests need PostgreSQL whatever DIGEST_TEST_DATABASE says (the worker runs only
there): they use the session's throwaway server (tests/helpers/pg.py) and fail in CI without it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from digest.config import load_settings
from digest.db.engine import make_engine, upgrade
from digest.editions.workflow import editorial_around
from digest.selection.due import PlanRequest, select_due
from digest.send.claim import claim_leased
from digest.send.claimed import Claimed
from digest.send.dispatcher import DispatchOptions
from digest.send.outcome import Envelope, Outcome, SenderLifecycle
from digest.send.plan import plan
from digest.send.record import Attempt, Recorder, RecordOptions
from digest.send.worker import Worker as SendingWorker
from digest.send.worker import WorkerOptions
from subscribers.imports import ImportOptions, import_csv
from subscribers.models import MailingList
from subscribers.people import unsubscribe
from tests.helpers import pg
from tests.helpers.ci import missing
from tests.helpers.cli import Cli
from tests.helpers.databases import admin
from tests.helpers.paths import ROOT
from tests.helpers.world import World, add_article, make_world

DIGEST = Path(sys.executable).with_name("digest")
_numbers = iter(range(1, 1_000_000))


@pytest.fixture
def pg_db(pg_server: pg.Server, pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own (even on a SQLite run of the suite)."""
    name = f"w_{os.getpid()}_{next(_numbers)}"
    admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield pg_server.url(name)
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_engine(pg_db: str) -> Iterator[Engine]:
    engine = make_engine(pg_db)
    yield engine
    engine.dispose()


class _Counting:
    """An aiosmtpd handler that keeps only the recipients (10,000 bodies are not kept)."""

    def __init__(self) -> None:
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.recipients.extend(envelope.rcpt_tos)
        return "250 2.0.0 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.recipients)


@pytest.fixture
def sink() -> Iterator[tuple[_Counting, int]]:
    handler = _Counting()
    port = pg.free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _zone_at_noon() -> str:
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def _world(engine: Engine, tmp_path: Path, emails: list[str]) -> World:
    with Session(engine, expire_on_commit=False) as session:
        world = make_world(session)
        zone = _zone_at_noon()
        csv = tmp_path / "readers.csv"
        rows = "".join(f"{email},,politics,{zone},12\n" for email in emails)
        csv.write_text("email,name,topics,timezone,hour\n" + rows, encoding="utf-8")
        import_csv(
            engine, csv, world.daily, {"politics": world.topic_id("politics")}, ImportOptions(zone)
        )
        add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    return world


def _plan_with_workers(db_url: str, count: int) -> None:
    """`digest send` with workers enabled only plans: everything is queued, nothing sent."""
    result = Cli(db_url).ok("--set", "workers.enabled=true", "send", "--list", "daily", "--json")
    assert '"sent": 0' in result.output and f'"queued": {count}' in result.output, result.output


def _statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(
            connection.execute(text("SELECT status, COUNT(*) FROM delivery GROUP BY status")).all()
        )


class Worker:
    def __init__(
        self,
        log: Path,
        db_url: str,
        port: int,
        *,
        smtp_rate: float = 0,
        concurrency: int = 4,
        **settings: str,
    ) -> None:
        self.log = log
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
            "DIGEST_DATABASE__URL": db_url,
            "DIGEST_SMTP__PORT": str(port),
            "DIGEST_SMTP__RATE": str(smtp_rate),
            "DIGEST_WORKERS__POLL_SECONDS": "0.2",
            **{f"DIGEST_WORKERS__{k.upper()}": v for k, v in settings.items()},
        }
        with log.open("w") as out:
            self.popen = subprocess.Popen(
                [str(DIGEST), "worker", "--concurrency", str(concurrency)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")


def _wait(check: Callable[[], bool], what: str, workers: list[Worker], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for worker in workers:
            if worker.popen.poll() not in (None, -signal.SIGKILL):
                raise AssertionError(f"a worker exited early:\n{worker.text()}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.text()[-2000:] for w in workers)
            raise AssertionError(f"timed out waiting for {what}:\n{logs}")
        time.sleep(0.1)


def _stop(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.popen.poll() is None:
            worker.popen.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.popen.kill()
            worker.popen.wait()


@pytest.mark.slow
def test_three_workers_send_ten_thousand_digests_each_exactly_once(
    tmp_path: Path, pg_db: str, pg_engine: Engine, sink: tuple[_Counting, int]
) -> None:
    handler, port = sink
    emails = [f"r{i}@example.org" for i in range(10_000)]
    _world(pg_engine, tmp_path, emails)
    _plan_with_workers(pg_db, len(emails))
    workers = [
        Worker(tmp_path / f"w{i}.log", pg_db, port, count="3", batch="200") for i in range(3)
    ]
    try:
        _wait(lambda: handler.count() >= len(emails), "10,000 messages", workers, timeout=240)
        _wait(lambda: _statuses(pg_engine) == {"sent": len(emails)}, "all recorded", workers, 30)
    finally:
        _stop(workers)
    assert [w.popen.returncode for w in workers] == [0, 0, 0], [w.text() for w in workers]
    counts = Counter(handler.recipients)
    assert set(counts) == set(emails) and max(counts.values()) == 1
    sent = [int(w.text().rsplit("sent=", 1)[1].split()[0]) for w in workers]
    assert sum(sent) == len(emails) and all(s > 0 for s in sent), sent  # all three worked
    with pg_engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM edition")).scalar_one() == "sent"


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_at_most_its_batch(
    tmp_path: Path, pg_db: str, pg_engine: Engine, sink: tuple[_Counting, int]
) -> None:
    handler, port = sink
    emails = [f"k{i}@example.org" for i in range(1500)]
    _world(pg_engine, tmp_path, emails)
    _plan_with_workers(pg_db, len(emails))
    batch = 50
    settings = {"count": "2", "batch": str(batch), "lease_seconds": "5"}
    victim = Worker(tmp_path / "victim.log", pg_db, port, **settings)
    workers = [victim]
    try:
        _wait(lambda: handler.count() >= 300, "the victim to send", workers, 60)
        victim.popen.send_signal(signal.SIGKILL)  # mid-batch: its rows stay leased
        victim.popen.wait(timeout=10)
        workers.append(Worker(tmp_path / "survivor.log", pg_db, port, **settings))
        done = {"sent": len(emails)}
        _wait(lambda: _statuses(pg_engine) == done, "every row sent", workers, 120)
    finally:
        _stop(workers)
    counts = Counter(handler.recipients)
    assert set(counts) == set(emails)  # none missing
    assert sum(c - 1 for c in counts.values()) <= batch  # only its in-flight batch twice


@pytest.mark.slow
def test_workers_ride_out_a_database_restart_mid_send(
    tmp_path: Path, sink: tuple[_Counting, int]
) -> None:
    # PostgreSQL is restarted (fast shutdown: every session cut, 2 s down) while two workers
    # send: they reconnect and finish, every digest is recorded `sent`, none is lost.
    try:
        with pg.server() as server:  # its own server: the session's one is not restarted
            _restart_mid_send(server, tmp_path, sink)
    except pg.PostgresMissing as exc:
        missing(str(exc))


def _restart_mid_send(server: pg.Server, tmp_path: Path, sink: tuple[_Counting, int]) -> None:
    handler, port = sink
    db_url = server.url()
    engine = make_engine(db_url)
    upgrade(engine)
    emails = [f"r{i}@example.org" for i in range(2000)]
    _world(engine, tmp_path, emails)
    _plan_with_workers(db_url, len(emails))
    concurrency = 4
    settings = {"count": "2", "batch": "100", "lease_seconds": "5"}
    workers = [
        Worker(tmp_path / f"w{i}.log", db_url, port, smtp_rate=300, **settings) for i in range(2)
    ]
    try:
        _wait(lambda: handler.count() >= 600, "600 messages", workers, 60)
        pg.restart(server, down_seconds=2.0)
        done = {"sent": len(emails)}
        _wait(lambda: _statuses(engine) == done, "every row sent", workers, 90)
        assert [w.popen.poll() for w in workers] == [None, None]  # both rode it out
    finally:
        _stop(workers)
    counts = Counter(handler.recipients)
    twice = sum(c - 1 for c in counts.values())
    assert set(counts) == set(emails)  # none lost
    # Only messages in flight when the sessions were cut may go twice (each worker's
    # connections and uncommitted outcomes), and only if their outcome could not be recorded
    # before the lease ran out.
    assert twice <= 2 * (concurrency + 2 * RecordOptions().batch), counts.most_common(10)
    assert [w.popen.returncode for w in workers] == [0, 0], [w.text() for w in workers]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM edition")).scalar_one() == "sent"
    engine.dispose()
    felt = ("cannot record", "database unavailable")
    assert any(m in w.text() for w in workers for m in felt)  # the restart did cut them off


def test_a_lease_that_runs_out_is_claimed_again_and_skip_locked_splits_the_rows(
    tmp_path: Path, pg_engine: Engine
) -> None:
    world = _world(pg_engine, tmp_path, [f"l{i}@example.org" for i in range(10)])
    now = datetime.now(UTC)
    _plan_rows(pg_engine, world, now)
    lease = timedelta(seconds=60)
    first = claim_leased(pg_engine, worker="a", now=now, limit=4, lease=lease)
    second = claim_leased(pg_engine, worker="b", now=now, limit=100, lease=lease)
    assert len(first) == 4 and len(second) == 6
    assert not {c.id for c in first} & {c.id for c in second}
    assert claim_leased(pg_engine, worker="b", now=now + lease / 2, limit=100, lease=lease) == []
    # "a" died: once its lease has run out its rows go to whoever asks next.
    later = claim_leased(
        pg_engine, worker="c", now=now + lease * 1.5, limit=100, lease=lease
    )  # b's lease ran out too
    assert {c.id for c in later} == {c.id for c in first + second}
    with pg_engine.connect() as connection:
        owners = connection.execute(text("SELECT DISTINCT claimed_by FROM delivery")).scalars()
        assert set(owners) == {"c"}
        # A row locked by another transaction (a worker mid-claim) is skipped, not waited for.
        with pg_engine.connect() as other:
            other.execute(
                text("SELECT id FROM delivery WHERE id = :i FOR UPDATE"), {"i": first[0].id}
            )
            taken = claim_leased(pg_engine, worker="d", now=now + lease * 3, limit=100, lease=lease)
            other.rollback()
    assert len(taken) == 9 and first[0].id not in {c.id for c in taken}


def _plan_rows(engine: Engine, world: World, now: datetime) -> int:
    with engine.connect() as connection, Session(engine) as session:
        mailing_list = session.get(MailingList, world.daily.id)
        assert mailing_list is not None
        selection = select_due(
            connection,
            mailing_list,
            PlanRequest(
                now=now,
                max_articles=20,
                editorial=editorial_around(connection, mailing_list, now, None),
            ),
        )
    plan(engine, selection, now)
    return selection.due


def test_two_planners_of_the_same_edition_plan_each_delivery_once(
    tmp_path: Path, pg_engine: Engine
) -> None:
    emails = [f"p{i}@example.org" for i in range(500)]
    world = _world(pg_engine, tmp_path, emails)
    now = datetime.now(UTC)
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            _plan_rows(pg_engine, world, now)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pg_engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM edition")).scalar_one() == 1
        rows = connection.execute(
            text("SELECT COUNT(DISTINCT subscriber_id), COUNT(*) FROM delivery")
        ).one()
    assert tuple(rows) == (500, 500)


def test_a_worker_on_an_unmigrated_database_or_on_sqlite_says_what_to_do(
    pg_server: pg.Server, tmp_path: Path
) -> None:
    name = f"empty_{os.getpid()}_{next(_numbers)}"
    admin(pg_server, f"CREATE DATABASE {name}")
    result = Cli(pg_server.url(name))("worker", "--once")
    assert result.exit_code == 1 and "run `digest db upgrade`" in result.stderr, result.output
    sqlite = Cli(f"sqlite:///{tmp_path / 'w.db'}")
    sqlite.ok("db", "upgrade")
    result = sqlite("worker", "--once")
    assert result.exit_code == 1 and "needs PostgreSQL" in result.stderr, result.output


class _SlowSender(SenderLifecycle):
    """A relay that takes `delay` seconds per message and accepts them all."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.recipients: list[str] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, envelope: Envelope) -> Outcome:
        await asyncio.sleep(self.delay)
        self.recipients.append(envelope.recipient)
        return Outcome("sent", 250, "2.0.0 OK")


def _in_process(
    db_url: str,
    engine: Engine,
    sender: _SlowSender,
    *,
    batch: int,
    lease: float,
    name: str,
    record: RecordOptions | None = None,
) -> SendingWorker:
    settings = load_settings(ROOT / "settings.toml", {"database.url": db_url})
    dispatch = DispatchOptions.from_settings(
        settings, concurrency=1, record=record or RecordOptions()
    )
    return SendingWorker(
        engine,
        sender,
        dispatch,
        WorkerOptions(batch=batch, lease=timedelta(seconds=lease), poll_seconds=0.05, name=name),
    )


def test_a_slow_batch_keeps_its_lease_while_it_is_sent(
    tmp_path: Path, pg_db: str, pg_engine: Engine
) -> None:
    # One batch takes five leases to send through a slow relay: renewed as it goes, none of
    # its rows can be claimed by another worker meanwhile, so none goes twice.
    emails = [f"s{i}@example.org" for i in range(15)]
    world = _world(pg_engine, tmp_path, emails)
    _plan_rows(pg_engine, world, datetime.now(UTC))
    lease = 0.6
    sender = _SlowSender(delay=0.2)
    worker = _in_process(pg_db, pg_engine, sender, batch=100, lease=lease, name="slow")
    stolen: list[Claimed] = []
    tries: list[datetime] = []  # when the other worker tried to claim

    async def main() -> datetime:
        sending = asyncio.create_task(worker.run(once=True))
        while "queued" in await asyncio.to_thread(_statuses, pg_engine):
            await asyncio.sleep(0.05)  # until the worker has claimed its batch
        first_lease = await asyncio.to_thread(_lease_until, pg_engine)
        while not sending.done():
            await asyncio.sleep(0.1)
            tries.append(datetime.now(UTC))
            stolen.extend(
                await asyncio.to_thread(
                    claim_leased,
                    pg_engine,
                    worker="other",
                    now=tries[-1],
                    limit=100,
                    lease=timedelta(seconds=lease),
                )
            )
        await sending
        return first_lease

    first_lease = asyncio.run(main())
    assert max(tries) > first_lease  # the batch did outlast the lease it was claimed with
    assert stolen == []
    assert sorted(sender.recipients) == sorted(emails)
    assert _statuses(pg_engine) == {"sent": len(emails)}


def _lease_until(engine: Engine) -> datetime:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT MIN(lease_until) FROM delivery")).scalar_one()
    assert isinstance(found, datetime)
    return found


def test_a_worker_goes_on_past_a_batch_whose_readers_all_left(
    tmp_path: Path, pg_db: str, pg_engine: Engine
) -> None:
    # Batches of 5; the 7 readers first in the queue unsubscribed since planning: the first
    # claim skips a whole batch, and `--once` still sends the 5 others before it stops.
    emails = [f"u{i}@example.org" for i in range(12)]
    world = _world(pg_engine, tmp_path, emails)
    _plan_rows(pg_engine, world, datetime.now(UTC))
    with pg_engine.connect() as connection:
        first = connection.execute(
            text(
                "SELECT s.email FROM delivery d JOIN subscriber s ON s.id = d.subscriber_id "
                "ORDER BY d.id LIMIT 7"
            )
        ).scalars()
        left = list(first)
    with Session(pg_engine) as session:
        for address in left:
            unsubscribe(session, address)
        session.commit()
    sender = _SlowSender()
    worker = _in_process(pg_db, pg_engine, sender, batch=5, lease=60, name="once")
    asyncio.run(worker.run(once=True))
    assert sorted(sender.recipients) == sorted(set(emails) - set(left))
    assert _statuses(pg_engine) == {"skipped": 7, "sent": 5}
    assert (worker.report.sent, worker.report.skipped_unsubscribed) == (5, 7)


def test_a_worker_that_cannot_record_outcomes_stays_up_and_its_rows_come_back(
    tmp_path: Path, pg_db: str, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database is away for longer than the recorder waits, right as the first outcomes
    # are committed: the worker keeps running, leaves the batch to its lease, and once the
    # lease has run out claims it again. Only messages whose outcome was lost go twice.
    emails = [f"d{i}@example.org" for i in range(10)]
    world = _world(pg_engine, tmp_path, emails)
    _plan_rows(pg_engine, world, datetime.now(UTC))
    away = [True]  # until the recorder gives up once
    commit, gave_up = Recorder._commit, Recorder._gave_up

    def unreachable(recorder: Recorder, attempts: list[Attempt]) -> list[str]:
        if away[0]:
            raise OperationalError("UPDATE delivery", {}, Exception("server closed the connection"))
        return commit(recorder, attempts)

    def give_up_once(recorder: Recorder, attempts: list[Attempt], exc: Any) -> Exception:
        away[0] = False
        return gave_up(recorder, attempts, exc)

    monkeypatch.setattr(Recorder, "_gave_up", give_up_once)
    monkeypatch.setattr(Recorder, "_commit", unreachable)
    sender = _SlowSender()
    record = RecordOptions(patience=0.2)
    worker = _in_process(pg_db, pg_engine, sender, batch=100, lease=1.0, name="cut", record=record)
    done = {"sent": len(emails)}
    statuses: list[dict[str, int]] = []

    async def main() -> None:
        sending = asyncio.create_task(
            worker.run(stop=lambda: bool(statuses) and statuses[-1] == done)
        )
        for _ in range(200):  # polls, 0.1 s apart at least
            if sending.done():
                break
            await asyncio.sleep(0.1)
            statuses.append(await asyncio.to_thread(_statuses, pg_engine))
        await sending

    asyncio.run(main())
    assert statuses[-1] == done
    assert not away[0]  # the recorder did give up once
    counts = Counter(sender.recipients)
    assert set(counts) == set(emails) and max(counts.values()) <= 2
    assert sum(counts.values()) > len(emails)  # what was not recorded went again
