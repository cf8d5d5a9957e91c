"""`digest worker`: many processes, one PostgreSQL, every digest sent once, none lost.

These tests need PostgreSQL whatever DIGEST_TEST_DATABASE says (the worker runs only
there): they use the session's throwaway server (tests/pg.py) and fail in CI without it.
"""

from __future__ import annotations

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
from sqlmodel import Session

from digest.db import make_engine
from digest.editions import editorial_around
from digest.outbox import plan
from digest.select import select_due
from digest.worker import claim_leased
from subscribers.imports import ImportOptions, import_csv
from subscribers.models import MailingList
from tests import pg
from tests.conftest import ROOT, Cli, _admin
from tests.digest.dispatch_fixtures import World, add_article, make_world

DIGEST = Path(sys.executable).with_name("digest")
_numbers = iter(range(1, 1_000_000))


@pytest.fixture
def pg_db(pg_server: pg.Server, pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own (even on a SQLite run of the suite)."""
    name = f"w_{os.getpid()}_{next(_numbers)}"
    _admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield pg_server.url(name)
    _admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
    def __init__(self, log: Path, db_url: str, port: int, **settings: str) -> None:
        self.log = log
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
            "DIGEST_DATABASE__URL": db_url,
            "DIGEST_SMTP__PORT": str(port),
            "DIGEST_WORKERS__POLL_SECONDS": "0.2",
            **{f"DIGEST_WORKERS__{k.upper()}": v for k, v in settings.items()},
        }
        with log.open("w") as out:
            self.popen = subprocess.Popen(
                [str(DIGEST), "worker", "--concurrency", "4"],
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
            now=now,
            max_articles=20,
            editorial=editorial_around(connection, mailing_list, now, None),
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
    _admin(pg_server, f"CREATE DATABASE {name}")
    result = Cli(pg_server.url(name))("worker", "--once")
    assert result.exit_code == 1 and "run `digest db upgrade`" in result.stderr, result.output
    sqlite = Cli(f"sqlite:///{tmp_path / 'w.db'}")
    sqlite.ok("db", "upgrade")
    result = sqlite("worker", "--once")
    assert result.exit_code == 1 and "needs PostgreSQL" in result.stderr, result.output
