"""Liveness of `digest scheduler` and `digest worker`: the heartbeat and its /healthz, fresh
(200) and stale (503) by an injected clock; a scheduler whose leadership check hangs and a
worker whose claim hangs go stale while their endpoint still answers; the real processes
answer on `[scheduler] health_port` and `[workers] health_port`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from digest.config import Settings, load_settings
from digest.db.engine import make_engine
from digest.errors import ConfigError
from digest.schedule.leader import Leadership
from digest.schedule.scheduler import Scheduler
from digest.send.dispatcher import DispatchOptions
from digest.send.smtp import SmtpSender
from digest.send.worker import Worker, WorkerOptions
from digest.service.liveness import Heartbeat, LivenessServer, liveness
from tests.helpers import pg
from tests.helpers.databases import admin
from tests.helpers.paths import ROOT
from tests.helpers.smtp_sink import SmtpSink

DIGEST = Path(sys.executable).with_name("digest")


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def soon(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def probe(server: LivenessServer | str) -> httpx.Response:
    url = server if isinstance(server, str) else server.url
    return httpx.get(url, timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fresh_heartbeat_answers_200_stale_503_with_its_age() -> None:
    clock = FakeClock()
    heartbeat = Heartbeat("scheduler", 45, clock=clock)
    with LivenessServer(heartbeat, 0) as server:
        clock.now += 45  # a new heartbeat counts as a beat: exactly at the limit is fresh
        fresh = probe(server)
        assert fresh.status_code == 200
        assert fresh.headers["content-type"] == "application/json"
        assert fresh.json() == {
            "status": "ok",
            "process": "scheduler",
            "state": "starting",
            "heartbeat_age_seconds": 45.0,
            "stale_after_seconds": 45,
        }
        clock.now += 0.5
        stale = probe(server)
        assert stale.status_code == 503
        assert stale.json()["status"] == "stale"
        assert stale.json()["heartbeat_age_seconds"] == 45.5
        heartbeat.beat("leading")
        again = probe(server).json()
        assert (again["status"], again["state"], again["heartbeat_age_seconds"]) == (
            "ok",
            "leading",
            0.0,
        )
        assert httpx.get(server.url.replace("/healthz", "/other")).status_code == 404


def test_port_zero_is_off_and_a_taken_port_names_the_setting() -> None:
    heartbeat = Heartbeat("worker", 120)
    assert liveness(heartbeat, 0, "workers.health_port") is None
    taken = LivenessServer(heartbeat, 0)
    try:
        with pytest.raises(ConfigError, match=rf"workers.health_port = {taken.port}: cannot"):
            liveness(heartbeat, taken.port, "workers.health_port")
    finally:
        taken.close()


class HangingLeadership(Leadership):
    """The real leader lock, whose check can be made to hang (a stuck database call)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.hang = threading.Event()
        self.hanging = threading.Event()
        self.release_hang = threading.Event()

    def held(self) -> bool:
        if self.hang.is_set():
            self.hanging.set()
            self.release_hang.wait(30)
        return super().held()


def test_a_scheduler_whose_loop_hangs_goes_stale_and_recovers(
    engine: Engine, settings: Settings
) -> None:
    clock = FakeClock()
    quick = settings.scheduler.model_copy(update={"leader_poll_seconds": 0.05})
    heartbeat = Heartbeat("scheduler", 45, clock=clock)
    leadership = HangingLeadership(engine)
    scheduler = Scheduler(
        engine,
        settings.model_copy(update={"scheduler": quick}),
        leadership=leadership,
        beat=heartbeat.beat,
    )
    serving = threading.Thread(target=scheduler.serve)
    with LivenessServer(heartbeat, 0) as server:
        serving.start()
        try:
            soon(lambda: probe(server).json()["state"] == "leading", "leading")
            assert probe(server).status_code == 200
            leadership.hang.set()
            soon(leadership.hanging.is_set, "the leadership check to hang")
            clock.now += 46  # no beat can come while the check hangs
            stale = probe(server)
            assert stale.status_code == 503 and stale.json()["state"] == "leading"
            leadership.hang.clear()
            leadership.release_hang.set()
            soon(lambda: probe(server).status_code == 200, "a beat after the hang")
        finally:
            leadership.release_hang.set()
            scheduler.request_stop()
            serving.join(timeout=15)
    assert not serving.is_alive()


def test_a_follower_beats_as_it_follows(engine: Engine, settings: Settings) -> None:
    quick = settings.scheduler.model_copy(update={"leader_poll_seconds": 0.05})
    leader = Leadership(engine)
    assert leader.acquire()
    states: list[str] = []
    scheduler = Scheduler(
        engine, settings.model_copy(update={"scheduler": quick}), beat=states.append
    )
    following = threading.Thread(target=scheduler.serve)
    following.start()
    try:
        soon(lambda: states.count("following") >= 3, "three beats while following")
        assert "leading" not in states
    finally:
        scheduler.request_stop()
        following.join(timeout=15)
        leader.release()


def test_digest_scheduler_answers_on_its_health_port(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE__URL": db_url,
        "DIGEST_SCHEDULER__LEADER_POLL_SECONDS": "0.2",
        "DIGEST_SCHEDULER__HEALTH_PORT": str(port),
    }
    with SmtpSink() as sink:
        env["DIGEST_SMTP__PORT"] = str(sink.port)
        process = _start(tmp_path / "scheduler.log", [str(DIGEST), "scheduler"], env)
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            soon(lambda: _answer(url, process) == ("ok", "leading"), "the scheduler to lead")
            assert _stop(process) == 0
        finally:
            _kill(process)
    log = (tmp_path / "scheduler.log").read_text(encoding="utf-8")
    assert f"INFO digest.service.liveness: liveness: scheduler answers on {url}" in log


@pytest.fixture
def pg_db(pg_server: pg.Server, pg_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own: the worker runs on PostgreSQL only."""
    name = f"h_{os.getpid()}_{time.monotonic_ns()}"
    admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield pg_server.url(name)
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_worker_whose_claim_hangs_goes_stale_and_recovers(pg_db: str) -> None:
    # Another session holds the outbox locked: the worker's claim waits for it, and its
    # loop beats no more; its endpoint, in a thread of its own, says so.
    engine = make_engine(pg_db)
    clock = FakeClock()
    heartbeat = Heartbeat("worker", 120, clock=clock)
    stopping = threading.Event()
    with SmtpSink() as sink, LivenessServer(heartbeat, 0) as server:
        worker = _worker(engine, pg_db, sink.port, beat=lambda: heartbeat.beat("running"))
        running = threading.Thread(target=asyncio.run, args=(worker.run(stop=stopping.is_set),))
        running.start()
        locker = engine.connect()
        try:
            soon(lambda: probe(server).json()["state"] == "running", "the worker to run")
            transaction = locker.begin()
            locker.execute(text("LOCK TABLE delivery IN ACCESS EXCLUSIVE MODE"))
            soon(lambda: _waiting_on_lock(engine), "the claim to wait for the lock")
            clock.now += 121
            assert probe(server).status_code == 503
            transaction.rollback()
            soon(lambda: probe(server).status_code == 200, "a beat after the lock")
        finally:
            locker.close()
            stopping.set()
            running.join(timeout=30)
    engine.dispose()
    assert not running.is_alive()


def _worker(engine: Engine, db_url: str, smtp_port: int, beat: Callable[[], None]) -> Worker:
    overrides = {"database.url": db_url, "smtp.port": str(smtp_port)}
    settings = load_settings(ROOT / "settings.toml", overrides)
    return Worker(
        engine,
        SmtpSender(settings.smtp),
        DispatchOptions.from_settings(settings, concurrency=1),
        WorkerOptions(batch=10, lease=timedelta(seconds=120), poll_seconds=0.05, name="w1"),
        beat=beat,
    )


def _waiting_on_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return int(waiting) > 0


def test_digest_worker_answers_on_its_health_port(tmp_path: Path, pg_db: str) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE__URL": pg_db,
        "DIGEST_WORKERS__POLL_SECONDS": "0.2",
        "DIGEST_WORKERS__HEALTH_PORT": str(port),
        "DIGEST_LOG__FORMAT": "json",
    }
    with SmtpSink() as sink:
        env["DIGEST_SMTP__PORT"] = str(sink.port)
        process = _start(tmp_path / "worker.log", [str(DIGEST), "worker"], env)
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            soon(lambda: _answer(url, process) == ("ok", "running"), "the worker to run")
            assert _stop(process) == 0
        finally:
            _kill(process)
    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert '"logger": "digest.service.liveness"' in log


def _start(log: Path, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("w") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)


def _answer(url: str, process: subprocess.Popen[bytes]) -> tuple[str, str] | None:
    assert process.poll() is None, "the process exited early"
    try:
        body = httpx.get(url, timeout=5).json()
    except httpx.TransportError:  # not listening yet
        return None
    return body["status"], body["state"]


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
