"""The send lock: one holder per list and database, kept for the whole run, freed after it."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text

from digest.db.engine import make_engine
from digest.db.locks import Busy, exclusive
from tests.helpers import pg

IDLE_TIMEOUT_SECONDS = 2
_numbers = itertools.count(1)


def test_a_second_sender_of_the_same_list_is_busy_until_the_first_is_done(engine: Engine) -> None:
    other_process = make_engine(str(engine.url))
    with exclusive(engine, "send-daily"):
        busy = pytest.raises(Busy, match="another process is running send-daily")
        with busy, exclusive(other_process, "send-daily"):
            pass
        with exclusive(other_process, "send-weekly"):  # another list sends meanwhile
            pass
    with exclusive(other_process, "send-daily"):  # free again once the run is over
        pass
    other_process.dispose()


def test_a_failed_run_frees_the_lock(engine: Engine) -> None:
    with pytest.raises(RuntimeError), exclusive(engine, "send-daily"):
        raise RuntimeError("the run failed")
    with exclusive(make_engine(str(engine.url)), "send-daily") as lock:
        assert lock.held()


@pytest.fixture
def impatient_pg(pg_server: pg.Server) -> Iterator[str]:
    """A database of the session's PostgreSQL whose server ends sessions idle in a transaction
    for more than IDLE_TIMEOUT_SECONDS, as managed PostgreSQL services often do."""
    name = f"locks_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        admin.execute(
            f"ALTER DATABASE {name} SET idle_in_transaction_session_timeout = "  # type: ignore[arg-type]
            f"'{IDLE_TIMEOUT_SECONDS}s'"
        )
    yield pg_server.url(name)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def _advisory_holders(observer: Connection) -> set[int]:
    """Backend pids holding an advisory lock in the observer's database."""
    rows = observer.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )
    return set(rows.scalars())


def _idle_past_the_timeout(observer: Connection, pid: int) -> bool:
    """The server's own view: session `pid` is gone, or has sat idle (in whatever state)
    longer than the timeout (with a margin), so the timeout would have ended it by now."""
    row = observer.execute(
        text(
            "SELECT clock_timestamp() - state_change > make_interval(secs => :limit)"
            " FROM pg_stat_activity WHERE pid = :pid"
        ),
        {"pid": pid, "limit": IDLE_TIMEOUT_SECONDS * 2},
    ).first()
    return row is None or bool(row[0])


def test_the_lock_outlives_a_slow_send_on_a_server_that_ends_idle_transactions(
    impatient_pg: str,
) -> None:
    sender_engine, other_process = make_engine(impatient_pg), make_engine(impatient_pg)
    with (
        make_engine(impatient_pg)
        .connect()
        .execution_options(isolation_level="AUTOCOMMIT") as observer
    ):
        with exclusive(sender_engine, "send-daily") as lock:
            (holder,) = _advisory_holders(observer)
            # The slow send: the lock's session does nothing for longer than the timeout.
            deadline = time.monotonic() + 30
            while not _idle_past_the_timeout(observer, holder):
                assert time.monotonic() < deadline, "the lock's session never went idle"
                time.sleep(0.1)
            state = observer.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": holder}
            ).scalar()
            assert state == "idle"  # never "idle in transaction"
            assert _advisory_holders(observer) == {holder}
            with pytest.raises(Busy), exclusive(other_process, "send-daily"):
                pass
            assert lock.held()  # its session is alive
        assert _advisory_holders(observer) == set()
    with exclusive(other_process, "send-daily"):
        pass
    sender_engine.dispose()
    other_process.dispose()
