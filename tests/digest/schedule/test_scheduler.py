"""The scheduler: on time in every zone across DST, catching up, one leader, clean stops.

In-process tests drive the real APScheduler scheduler through simulated time (time-machine);
the leader/follower and SIGTERM tests run `digest scheduler` as real processes against one
SQLite file and one SMTP sink.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.engine import make_engine
from digest.db.models import Delivery, Edition
from digest.schedule.jobs import Counts, Jobs
from digest.schedule.leader import Leadership
from digest.schedule.scheduler import JobSpec, RoundInterval, Scheduler, build_scheduler, job_specs
from digest.selection.window import due_moment
from digest.send.plan import LATE_NOTE
from digest.send.smtp import SmtpSender
from subscribers.imports import ImportOptions, import_csv
from subscribers.models import Subscriber
from tests.helpers.cli import Cli
from tests.helpers.paths import ROOT
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader, make_world

DIGEST = Path(sys.executable).with_name("digest")


def _tuned(settings: Settings, port: int, **scheduler: object) -> Settings:
    smtp = settings.smtp.model_copy(update={"port": port, "connections": 2})
    config = settings.scheduler.model_copy(update=scheduler)
    return settings.model_copy(update={"smtp": smtp, "scheduler": config})


class Clockwork:
    """A real APScheduler scheduler run through simulated time: each step moves the
    time-machine clock, wakes the scheduler and waits for every job that fell due."""

    def __init__(self, specs: list[JobSpec], traveller: time_machine.Coordinates) -> None:
        self.traveller = traveller
        self.scheduler = build_scheduler(specs)
        self.finished: Counter[str] = Counter()
        self._changed = threading.Condition()
        self.scheduler.add_listener(
            self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )

    def _finished(self, event: Any) -> None:
        with self._changed:
            self.finished[event.job_id] += 1
            self._changed.notify_all()

    def _run_due(self, kick: Callable[[], object]) -> None:
        now = datetime.now(UTC)
        due = {
            j.id: self.finished[j.id] for j in self.scheduler.get_jobs() if j.next_run_time <= now
        }
        kick()
        with self._changed:
            done = self._changed.wait_for(
                lambda: all(self.finished[job] > seen for job, seen in due.items()), timeout=60
            )
        assert done, f"jobs {sorted(due)} did not finish"

    def advance(self, delta: timedelta) -> None:
        self.traveller.shift(delta)
        self._run_due(self.scheduler.wakeup)

    def __enter__(self) -> Clockwork:
        self._run_due(self.scheduler.start)  # every job runs once at start
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.scheduler.shutdown(wait=True)


def _job_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("job=")]


def _field(line: str, key: str) -> int:
    return int(dict(part.split("=", 1) for part in line.split())[key])


def test_three_time_zones_one_digest_per_local_day_at_their_hour_over_a_dst_week(
    engine: Engine, session: Session, settings: Settings
) -> None:
    # 24 October - 2 November 2026: London leaves summer time on the 25th, New York on
    # 1 November (where 01:00 happens twice). The scheduler ticks every hour.
    world = make_world(session)
    readers = {
        "riyadh@example.org": ("Asia/Riyadh", 7),
        "london@example.org": ("Europe/London", 8),
        "ny@example.org": ("America/New_York", 7),
        "ny-night@example.org": ("America/New_York", 1),
    }
    for address, (zone, hour) in readers.items():
        add_reader(session, world, address, ["politics"], timezone=zone, hour=hour)
    start, end = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC)
    with SmtpSink() as sink, time_machine.travel(start, tick=False) as traveller:
        tuned = _tuned(
            settings, sink.port, ingest_minutes=60, dispatch_minutes=60, retry_minutes=60
        )
        with Clockwork(job_specs(Jobs(engine, tuned), tuned.scheduler), traveller) as clock:
            while (now := datetime.now(UTC)) < end:
                if now.hour % 6 == 0:  # news keeps coming
                    add_article(session, world, f"خبر {now:%d-%H}", ["politics"], now)
                clock.advance(timedelta(hours=1))
        received = Counter(sink.recipients())
    session.expire_all()
    rows = session.exec(select(Delivery)).all()
    assert {r.status for r in rows} == {"sent"}
    edition_day = {e.id: e.local_date for e in session.exec(select(Edition))}
    email_of = {s.id: s.email for s in session.exec(select(Subscriber))}
    days = [date(2026, 10, 23) + timedelta(days=n) for n in range(12)]
    for address, (zone, hour) in readers.items():
        owed = [d for d in days if start <= due_moment(d, zone, hour) <= end]
        mine = [r for r in rows if email_of[r.subscriber_id] == address]
        assert sorted(edition_day[r.edition_id] for r in mine) == owed, address
        assert received[address] == len(owed) >= 9
        for row in mine:  # at their own hour, on the hour
            assert row.sent_at is not None
            local = row.sent_at.astimezone(ZoneInfo(zone))
            assert (local.date(), local.hour, local.minute) == (
                edition_day[row.edition_id],
                hour,
                0,
            )


def test_after_downtime_the_first_tick_catches_up_until_the_lateness_limit(
    engine: Engine, session: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Riyadh readers at 03:00, 08:00 and 11:00. The scheduler ran on the 28th, then was down
    # from 02:00 to 13:00 on the 29th; lateness_hours is 6.
    caplog.set_level(logging.INFO, logger="digest")
    world = make_world(session)
    for hour in (3, 8, 11):
        add_reader(session, world, f"h{hour}@example.org", ["politics"], hour=hour)
    with SmtpSink() as sink:
        tuned = _tuned(settings, sink.port, lateness_hours=6)
        with time_machine.travel(datetime(2026, 11, 27, 23, tzinfo=UTC), tick=False) as clock:
            add_article(session, world, "أمس", ["politics"], datetime.now(UTC))
            for utc_hour in (0, 5, 8):  # 03:00, 08:00 and 11:00 on the 28th in Riyadh
                clock.move_to(datetime(2026, 11, 28, utc_hour, tzinfo=UTC))
                Scheduler(engine, tuned).run_once()
            assert len(sink.messages) == 3
            clock.move_to(datetime(2026, 11, 29, 6, tzinfo=UTC))  # 09:00, while it is down
            add_article(session, world, "خبر الصباح", ["politics"], datetime.now(UTC))
            clock.move_to(datetime(2026, 11, 29, 10, tzinfo=UTC))  # back at 13:00
            caplog.clear()
            Scheduler(engine, tuned).run_once()
            assert sorted(sink.recipients()[3:]) == ["h11@example.org", "h8@example.org"]
            dispatch = next(line for line in _job_lines(caplog) if "job=dispatch" in line)
            assert "status=ok" in dispatch and "sent=2" in dispatch and "late=1" in dispatch
            assert "h3@example.org (2026-11-29)" in caplog.text
            clock.move_to(datetime(2026, 11, 30, 0, tzinfo=UTC))  # 03:00 on the 30th
            Scheduler(engine, tuned).run_once()
        assert sink.recipients()[5:] == ["h3@example.org"]
        # The skipped day's news is not lost: the next digest's window starts where it was.
        assert "خبر الصباح" in _text(sink.messages[5].data)
    session.expire_all()
    skipped = [d for d in session.exec(select(Delivery)) if d.status == "skipped"]
    assert [(d.subscriber_id, d.smtp_message) for d in skipped] == [(1, LATE_NOTE)]


def _text(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_failing_job_is_logged_with_its_traceback_and_runs_again_next_tick(
    engine: Engine, session: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The SMTP server is down at 07:00 and back by 07:05; another job raises once.
    caplog.set_level(logging.INFO, logger="digest")
    world = make_world(session)
    for name in ("a", "b"):
        add_reader(session, world, f"{name}@example.org", ["politics"])
    with SmtpSink() as down:
        dead_port = down.port
    calls: list[int] = []

    def flaky() -> Counts:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the feed store exploded")
        return {"runs": len(calls)}

    with (
        SmtpSink() as sink,
        time_machine.travel(datetime(2026, 11, 29, 4, tzinfo=UTC), tick=False) as tm,
    ):
        add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
        tuned = _tuned(settings, sink.port)
        port = {"now": dead_port}
        jobs = Jobs(
            engine,
            tuned,
            sender_factory=lambda: SmtpSender(tuned.smtp.model_copy(update={"port": port["now"]})),
        )
        specs = [*job_specs(jobs, tuned.scheduler), JobSpec("flaky", flaky, RoundInterval(5), 300)]
        with Clockwork(specs, tm) as clock:
            failed = [r for r in caplog.records if r.exc_info]
            assert {r.getMessage().split(";")[0] for r in failed} >= {
                "list daily failed",
                "job=flaky status=error duration=0.000s",
            }
            assert any("RuntimeError: the feed store exploded" in r.exc_text for r in failed)
            assert any(
                "SmtpUnavailable" in (r.exc_text or "") and str(dead_port) in (r.exc_text or "")
                for r in failed
            )
            assert any(line.startswith("job=dispatch status=error") for line in _job_lines(caplog))
            assert sink.messages == []
            session.expire_all()
            assert {d.status for d in session.exec(select(Delivery))} == {"queued"}
            port["now"] = sink.port
            caplog.clear()
            clock.advance(timedelta(minutes=5))
            assert clock.scheduler.running
        lines = _job_lines(caplog)
        assert "job=flaky status=ok duration=0.000s runs=2" in lines
        # Whichever sending tick comes first (here the retry tick, due at 07:04) sends them.
        sending = [line for line in lines if line.split()[0] in {"job=dispatch", "job=retry"}]
        assert all("status=ok" in line for line in sending)
        assert sum(_field(line, "sent") for line in sending) == 2
        assert sorted(sink.recipients()) == ["a@example.org", "b@example.org"]


def test_ticks_fall_on_round_times_even_after_a_start_at_any_time(settings: Settings) -> None:
    # Started at 10:03:27, the scheduler runs every job at once, then dispatches at 10:05,
    # 10:10 … so that a 07:00 reader gets their digest at 07:00, not at 07:03:27.
    specs = {
        s.name: s for s in job_specs(Jobs(create_engine("sqlite://"), settings), settings.scheduler)
    }
    started = datetime(2026, 11, 29, 10, 3, 27, tzinfo=UTC)
    dispatch = specs["dispatch"].trigger
    after_start = dispatch.get_next_fire_time(started, started)
    assert after_start == datetime(2026, 11, 29, 10, 5, tzinfo=UTC)
    assert dispatch.get_next_fire_time(after_start, after_start) == after_start + timedelta(
        minutes=5
    )
    assert specs["retry"].trigger.get_next_fire_time(started, started).minute == 4
    housekeeping = specs["housekeeping"].trigger.get_next_fire_time(started, started)
    assert housekeeping.astimezone(ZoneInfo("Asia/Riyadh")).hour == 4
    assert {s.grace_seconds for s in specs.values()} == {600, 300, 120, 3600}


@pytest.mark.sqlite_only  # removes the lock file (an advisory lock has none)
def test_serve_steps_down_when_its_lock_is_lost_and_leads_again_when_it_is_free(
    engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Someone deletes the lock file and another scheduler locks a new one: the first notices,
    # stops its jobs and follows; once the other stops, it leads again.
    caplog.set_level(logging.INFO, logger="digest")
    quick = settings.scheduler.model_copy(update={"leader_poll_seconds": 0.05})
    scheduler = Scheduler(engine, settings.model_copy(update={"scheduler": quick}))
    serving = threading.Thread(target=scheduler.serve)

    def soon(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 15
        while not check():
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.02)

    serving.start()
    try:
        soon(lambda: len(_job_lines(caplog)) == 4)
        assert scheduler.leadership.path is not None
        scheduler.leadership.path.unlink()
        other = Leadership(engine)
        assert other.acquire()
        soon(lambda: "following: another scheduler leads" in caplog.text)
        assert "lost the leader lock" in caplog.text
        other.release()
        soon(lambda: caplog.text.count("leading: this scheduler runs the jobs") == 2)
        soon(lambda: len(_job_lines(caplog)) == 8)  # every job again, at once
    finally:
        scheduler.request_stop()
        serving.join(timeout=15)
    assert not serving.is_alive()
    assert "scheduler stopped" in caplog.text


def test_an_idle_tick_connects_to_nothing(
    engine: Engine, session: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Nobody is due: the SMTP server may as well be down, the run is still clean.
    caplog.set_level(logging.INFO, logger="digest")
    world = make_world(session, hour=23)
    add_reader(session, world, "later@example.org", ["politics"])
    with SmtpSink() as down:
        dead_port = down.port
    with time_machine.travel(datetime(2026, 11, 29, 4, tzinfo=UTC), tick=False):
        runs = Scheduler(engine, _tuned(settings, dead_port)).run_once()
    assert runs is not None and [(r.job, r.status) for r in runs] == [
        ("ingest", "ok"),
        ("dispatch", "ok"),
        ("retry", "ok"),
        ("housekeeping", "ok"),
    ]


def test_two_schedulers_that_ignore_the_leader_lock_still_send_each_digest_once(
    tmp_path: Path, engine: Engine, session: Session, settings: Settings
) -> None:
    # Both dispatch ticks run at the same moment: the list lock and the outbox's unique
    # (edition, subscriber) keep it to one message each.
    world = make_world(session)
    emails = [f"r{i}@example.org" for i in range(150)]
    _import(engine, world, tmp_path / "people.csv", emails, "Asia/Riyadh", hour=7)
    with SmtpSink() as sink, time_machine.travel(datetime(2026, 11, 29, 5, tzinfo=UTC), tick=False):
        add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
        tuned = _tuned(settings, sink.port)
        together = threading.Barrier(2)
        results: list[Counts] = []

        def tick() -> None:
            jobs = Jobs(make_engine(tuned.database.url), tuned)
            together.wait()
            results.append(jobs.dispatch())

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = Counter(sink.recipients())
    assert len(counts) == 150 and set(counts.values()) == {1}
    assert sum(r["sent"] for r in results) == 150


def test_once_runs_every_job_once_now_and_exits(
    cli: Cli, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    # From cron: `digest scheduler --once` ingests first, so the digest has today's news.
    caplog.set_level(logging.INFO, logger="digest")
    world = make_world(session)
    add_reader(session, world, "reem@example.org", ["politics"])
    cli.ok("feeds", "add", str(ROOT / "digest" / "samples" / "feed.xml"), "-t", "politics")
    with SmtpSink() as sink, time_machine.travel(datetime(2026, 11, 29, 5, tzinfo=UTC), tick=False):
        cli.ok("--set", f"smtp.port={sink.port}", "scheduler", "--once")
        lines = _job_lines(caplog)
        assert [line.split()[0] for line in lines] == [
            "job=ingest",
            "job=dispatch",
            "job=retry",
            "job=housekeeping",
        ]
        assert "feeds=1" in lines[0] and "new=0" not in lines[0]
        assert "sent=1" in lines[1]
        assert sink.recipients() == ["reem@example.org"]
        cli.ok("--set", f"smtp.port={sink.port}", "scheduler", "--once")  # nothing new
        assert len(sink.messages) == 1


def test_once_runs_nothing_while_another_scheduler_leads(
    cli: Cli, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    leader = Leadership(engine)
    assert leader.acquire()
    try:
        cli.ok("scheduler", "--once")
    finally:
        leader.release()
    assert "another scheduler leads this database" in caplog.text
    assert _job_lines(caplog) == []


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("dispatch_minutes", "0", "Input should be greater than 0"),
        ("ingest_minutes", "often", "Input should be a valid number"),
        ("timezone", "Mars/Olympus", "unknown IANA timezone 'Mars/Olympus'"),
        ("lateness_hours", "0.05", "must be at least one dispatch interval"),
        ("housekeeping_hour", "24", "less than or equal to 23"),
    ],
)
def test_invalid_scheduler_settings_fail_at_start_naming_the_key(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, key: str, value: str, says: str
) -> None:
    monkeypatch.setenv(f"DIGEST_SCHEDULER__{key.upper()}", value)
    result = cli("scheduler", "--once")
    assert result.exit_code == 2
    assert f"scheduler.{key} (DIGEST_SCHEDULER__{key.upper()})" in result.stderr
    assert says in result.stderr


# -- real processes ----------------------------------------------------------------------------


def _zone_at_noon() -> str:
    """A fixed-offset zone where it is 12:xx now: readers at 12:00 are due, far from midnight."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _env(db_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DIGEST_DATABASE__URL": db_url,
        "DIGEST_SMTP__PORT": str(port),
        "DIGEST_SCHEDULER__LEADER_POLL_SECONDS": "0.2",
        **extra,
    }


def _import(
    engine: Engine, world: World, csv: Path, emails: list[str], zone: str, hour: int = 12
) -> None:
    """Readers at `hour` in `zone`, through the bulk import (fast enough for hundreds)."""
    rows = "".join(f"{email},,politics,{zone},{hour}\n" for email in emails)
    csv.write_text("email,name,topics,timezone,hour\n" + rows, encoding="utf-8")
    topics = {"politics": world.topic_id("politics")}
    import_csv(engine, csv, world.daily, topics, ImportOptions(zone))


class Process:
    """`digest scheduler` in a process of its own, its log in a file."""

    def __init__(self, log: Path, env: dict[str, str], *args: str) -> None:
        self.log = log
        with log.open("w") as sink:
            self.popen = subprocess.Popen(
                [str(DIGEST), "scheduler", *args],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.popen.poll() is None or check(), f"exited early:\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.text()}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=30)


def test_two_scheduler_processes_one_leads_the_other_takes_over_each_digest_once(
    tmp_path: Path, db_url: str, engine: Engine, session: Session
) -> None:
    world = make_world(session)
    zone = _zone_at_noon()
    first = [f"a{i}@example.org" for i in range(60)]
    _import(engine, world, tmp_path / "first.csv", first, zone)
    add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    with SmtpSink() as sink:
        env = _env(db_url, sink.port)
        leader = Process(tmp_path / "leader.log", env)
        follower: Process | None = None
        try:
            leader.wait_for(lambda: "leading" in leader.text(), "the first to lead")
            follower = Process(tmp_path / "follower.log", env)
            fol = follower
            fol.wait_for(lambda: "following: another scheduler leads" in fol.text(), "a follower")
            leader.wait_for(lambda: len(sink.messages) >= 60 and "sent=60" in leader.text(), "60")
            assert "job=" not in fol.text()  # a follower runs nothing
            leader.popen.send_signal(signal.SIGKILL)  # the leader's machine dies
            leader.popen.wait(timeout=10)
            later = [f"b{i}@example.org" for i in range(20)]
            _import(engine, world, tmp_path / "later.csv", later, zone)
            fol.wait_for(
                lambda: len(sink.messages) >= 80 and "sent=20" in fol.text(),
                "the new leader to send and log it",
            )
            assert "leading" in fol.text() and "sent=20" in fol.text()
            assert fol.stop() == 0
        finally:
            for process in (leader, follower):
                if process is not None and process.popen.poll() is None:
                    process.popen.kill()
        counts = Counter(sink.recipients())
    assert counts == Counter(first + later)  # everyone exactly once
    session.expire_all()
    assert {d.status for d in session.exec(select(Delivery))} == {"sent"}


def test_sigterm_during_a_send_finishes_the_batch_and_loses_or_doubles_nothing(
    tmp_path: Path, db_url: str, engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session)
    zone = _zone_at_noon()
    everyone = [f"r{i}@example.org" for i in range(300)]
    _import(engine, world, tmp_path / "people.csv", everyone, zone)
    add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    with SmtpSink() as sink:
        slow = _env(db_url, sink.port, DIGEST_SMTP__RATE="150", DIGEST_SMTP__CONNECTIONS="4")
        scheduler = Process(tmp_path / "scheduler.log", slow)
        try:
            scheduler.wait_for(lambda: len(sink.messages) >= 60, "sending to start", timeout=60)
            assert scheduler.stop() == 0  # a clean exit, within stop()'s bounded wait
        finally:
            if scheduler.popen.poll() is None:
                scheduler.popen.kill()
        received = len(sink.messages)
        assert received < 300, "the stop must land mid-send"
        session.expire_all()
        status = Counter(d.status for d in session.exec(select(Delivery)))
        # Every message the server accepted is recorded as sent; nothing is left in flight.
        assert status == Counter({"sent": received, "queued": 300 - received})
        assert "job=dispatch status=ok" in scheduler.text()
        # The next start sends the rest, and only the rest.
        runs = Scheduler(engine, _tuned(settings, sink.port)).run_once()
        assert runs is not None and {r.status for r in runs} == {"ok"}
        counts = Counter(sink.recipients())
    assert counts == Counter(everyone)
