"""The scheduler: APScheduler runs ingest, the bounce-mailbox poll ([inbound.imap]), dispatch,
retries and housekeeping on time.

Only the leader of a database runs jobs (`digest.schedule.leader`); another `digest scheduler`
follows, polling the lock, and takes over when the leader stops. Who is due is decided
from the outbox at each tick, never from the scheduler's memory, so a restart after
downtime catches up by itself (within `[scheduler] lateness_hours`) and a tick that runs
twice sends nothing twice. Each job run logs one line: job, status, duration, counts.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from digest.config import SchedulerSettings, Settings
from digest.schedule.jobs import Counts, Jobs
from digest.schedule.leader import Leadership
from digest.send.outcome import Sender

logger = logging.getLogger(__name__)

# Interval triggers count from this instant, so ticks fall on round times: every 5 minutes
# means :00, :05, :10 … and a subscriber's 07:00 digest leaves at 07:00.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_AFTER = timedelta(milliseconds=1)
# How often the main thread looks at its stop flag (a signal handler only sets a flag).
POLL = 0.1
# The heartbeat (beaten every leader_poll_seconds, leading or following) is stale after
# this many polls without one: `digest scheduler`'s liveness answer turns 503.
STALE_POLLS = 3


class RoundInterval(IntervalTrigger):  # type: ignore[misc]
    """Every `minutes` on round times counted from EPOCH, whenever the previous run was.

    APScheduler's IntervalTrigger counts from the previous run, so the immediate run at
    start would shift every later tick off the round times.
    """

    def __init__(self, minutes: float) -> None:
        super().__init__(minutes=minutes, start_date=EPOCH, timezone=UTC)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # The first round time strictly after the previous run (or from now, at the start);
        # APScheduler coalesces the ones already past into one run.
        since = now if previous_fire_time is None else previous_fire_time + _AFTER
        result: datetime | None = super().get_next_fire_time(None, since)
        return result


@dataclass(frozen=True)
class JobRun:
    """One run of one job, as logged."""

    job: str
    status: str  # ok | error
    seconds: float
    counts: Counts

    def line(self) -> str:
        fields = "".join(f" {key}={value}" for key, value in self.counts.items())
        return f"job={self.job} status={self.status} duration={self.seconds:.3f}s{fields}"


@dataclass(frozen=True)
class JobSpec:
    """A job and when it runs: its trigger, how late a run may start, which thread pool."""

    name: str
    work: Callable[[], Counts]
    trigger: Any
    grace_seconds: int
    executor: str = "default"


def run_job(name: str, work: Callable[[], Counts]) -> JobRun:
    """Run one job and log its line; a job that raises is logged with its traceback and
    returns an error run (the next tick runs it again), so the scheduler keeps going."""
    started = time.monotonic()
    try:
        counts = work()
    except Exception:
        run = JobRun(name, "error", time.monotonic() - started, {})
        logger.error("%s", run.line(), exc_info=True)
        return run
    run = JobRun(
        name, "error" if counts.get("failed") else "ok", time.monotonic() - started, counts
    )
    logger.log(logging.WARNING if run.status == "error" else logging.INFO, "%s", run.line())
    return run


def job_specs(jobs: Jobs, config: SchedulerSettings) -> list[JobSpec]:
    """The jobs, in the order `--once` runs them (fresh articles, then bounces polled from
    `[inbound.imap]` when its host is set, before dispatch).

    Dispatch and retry share a one-thread pool: both take each list's send lock, and a
    dispatch tick must not find its list busy with our own retry tick at a subscriber's hour.
    """

    def every(minutes: float) -> tuple[RoundInterval, int]:
        # A run may start up to one interval late (coalesced: once, however many were missed).
        return RoundInterval(minutes), max(1, round(minutes * 60))

    ingest, ingest_grace = every(config.ingest_minutes)
    dispatch, dispatch_grace = every(config.dispatch_minutes)
    retry, retry_grace = every(config.retry_minutes)
    daily = CronTrigger(hour=config.housekeeping_hour, timezone=config.timezone)
    specs = [
        JobSpec("ingest", jobs.ingest, ingest, ingest_grace),
        JobSpec("dispatch", jobs.dispatch, dispatch, dispatch_grace, "sending"),
        JobSpec("retry", jobs.retry, retry, retry_grace, "sending"),
        JobSpec("housekeeping", jobs.housekeeping, daily, 3600),
    ]
    imap = jobs.settings.inbound.imap
    if imap.host:
        # Before dispatch: bounces read first keep the next digests from dead addresses.
        inbound, inbound_grace = every(imap.poll_minutes)
        specs.insert(1, JobSpec("inbound", jobs.inbound, inbound, inbound_grace))
    return specs


def build_scheduler(
    specs: Sequence[JobSpec], *, first_run: datetime | None = None
) -> BackgroundScheduler:
    """An APScheduler scheduler (not started) running `specs`: coalesced, never overlapping
    themselves, each run first at `first_run` (default: now, i.e. at start)."""
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={
            "default": ThreadPoolExecutor(max_workers=len(specs) + 1),
            "sending": ThreadPoolExecutor(max_workers=1),
        },
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    start = first_run or datetime.now(UTC)
    for spec in specs:
        scheduler.add_job(
            run_job,
            spec.trigger,
            args=(spec.name, spec.work),
            id=spec.name,
            name=spec.name,
            executor=spec.executor,
            misfire_grace_time=spec.grace_seconds,
            next_run_time=start,
        )
    scheduler.add_listener(_log_not_run, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _log_not_run(event: Any) -> None:
    reason = "missed" if event.code == EVENT_JOB_MISSED else "still-running"
    logger.warning("job=%s status=skipped reason=%s", event.job_id, reason)


class Scheduler:
    """`digest scheduler`: follows until it holds the leader lock, then runs the jobs until
    asked to stop (SIGTERM/SIGINT) — or until the lock is lost, and then follows again."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        sender_factory: Callable[[], Sender] | None = None,
        leadership: Leadership | None = None,
        beat: Callable[[str], None] = lambda _state: None,
    ) -> None:
        self.config = settings.scheduler
        # Called with "leading" or "following" at every leadership check: the liveness
        # heartbeat (from APScheduler's pool while leading, so a stuck scheduler goes stale).
        self.beat = beat
        self.leadership = leadership or Leadership(engine)
        self.jobs = Jobs(engine, settings, sender_factory=sender_factory, stop=self.halting)
        self._stopping = False  # a signal came: finish what is in flight, then exit
        self._term_over = False  # this spell as leader ends (stopping, or the lock was lost)

    def halting(self) -> bool:
        """True once running jobs should finish their batch in flight and return."""
        return self._stopping or self._term_over

    def request_stop(self, *_: object) -> None:
        """Take no new work; what is in flight is finished and recorded. Signal-safe."""
        self._stopping = True

    @contextmanager
    def signals(self) -> Iterator[None]:
        """Inside, SIGTERM and SIGINT call `request_stop` (main thread only)."""
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def run_once(self) -> list[JobRun] | None:
        """Every job once, now, in order; None (nothing run) when another scheduler leads."""
        if not self.leadership.acquire():
            logger.warning(
                "another scheduler leads this database (%s): nothing run", self.leadership.where
            )
            return None
        try:
            runs = []
            for spec in job_specs(self.jobs, self.config):
                if self._stopping:
                    break
                runs.append(run_job(spec.name, spec.work))
            return runs
        finally:
            self.leadership.release()

    def serve(self) -> None:
        """Run until `request_stop`: lead when the lock is free, follow while it is not."""
        while self._wait_for_lead():
            try:
                self._lead()
            finally:
                self.leadership.release()
        logger.info("scheduler stopped")

    def _wait_for_lead(self) -> bool:
        announced = False
        while not self._stopping:
            if self.leadership.acquire():
                logger.info("leading: this scheduler runs the jobs (%s)", self.leadership.where)
                return True
            self.beat("following")
            if not announced:
                logger.info(
                    "following: another scheduler leads (%s); trying again every %gs",
                    self.leadership.where,
                    self.config.leader_poll_seconds,
                )
                announced = True
            self._sleep(self.config.leader_poll_seconds)
        return False

    def _lead(self) -> None:
        self._term_over = False
        self.beat("leading")
        scheduler = build_scheduler(job_specs(self.jobs, self.config))
        scheduler.add_job(
            self._check_lead,
            IntervalTrigger(seconds=self.config.leader_poll_seconds, timezone=UTC),
            id="leadership",
            name="leadership",
        )
        scheduler.start()
        try:
            while not self.halting():
                time.sleep(POLL)
        finally:
            self._term_over = True
            logger.info("no new jobs: waiting for the running ones to record their batch")
            scheduler.shutdown(wait=True)

    def _check_lead(self) -> None:
        if self.leadership.held():
            self.beat("leading")
        else:
            logger.error(
                "lost the leader lock (%s): stopping the jobs, then following",
                self.leadership.where,
            )
            self._term_over = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
