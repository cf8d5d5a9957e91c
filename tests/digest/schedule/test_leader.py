"""The leader lock: one holder per database, freed when its holder stops or dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from digest.db.engine import make_engine
from digest.schedule.leader import Leadership
from tests.helpers import pg


def test_one_leader_per_database_and_the_next_one_takes_over(engine: Engine) -> None:
    first, second = Leadership(engine), Leadership(make_engine(str(engine.url)))
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    assert first.acquire()  # asking again while holding it is harmless
    first.release()
    assert second.acquire() and second.held()
    second.release()


def test_a_killed_leader_frees_the_lock(tmp_path: Path, engine: Engine) -> None:
    # Scenario: the leading process is killed with SIGKILL; the kernel drops its file lock.
    code = (
        "import sys, time\n"
        "from digest.db.engine import make_engine\n"
        "from digest.schedule.leader import Leadership\n"
        f"lead = Leadership(make_engine({str(engine.url)!r}))\n"
        "assert lead.acquire()\n"
        "print('leading', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "leading"
        follower = Leadership(engine)
        assert not follower.acquire()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not follower.acquire():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        follower.release()
    finally:
        child.kill()
        child.wait()


@pytest.mark.sqlite_only  # lock files exist on SQLite only
def test_a_removed_lock_file_means_the_lock_is_lost(engine: Engine) -> None:
    # Another process could lock a new file of the same name: this one must stop leading.
    leader = Leadership(engine)
    assert leader.acquire()
    assert leader.path is not None
    leader.path.unlink()
    assert not leader.held()
    leader.release()


@pytest.fixture
def pg_url(pg_server: pg.Server) -> str:
    """The session's throwaway PostgreSQL server (tests/helpers/pg.py; fails in CI without it)."""
    return pg_server.url()


def test_postgresql_advisory_lock_one_leader_and_a_dead_session_loses_it(pg_url: str) -> None:
    leader, follower = Leadership(make_engine(pg_url)), Leadership(make_engine(pg_url))
    assert leader.acquire() and leader.held()
    assert not follower.acquire()
    with make_engine(pg_url).connect() as connection:
        # Held for days, the lock must not keep a transaction open.
        states = connection.execute(
            text("SELECT state FROM pg_stat_activity WHERE query LIKE '%pg_try_advisory_lock%'")
        ).scalars()
        assert "idle in transaction" not in set(states)
        # The leader's database session dies (PostgreSQL restarted, connection cut): the
        # lock goes with it, the leader notices, the follower takes over.
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'")
        )
    assert not leader.held()
    assert follower.acquire()
    leader.release()
    follower.release()
