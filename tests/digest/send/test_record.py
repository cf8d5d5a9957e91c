"""Recording outcomes (digest/send/record.py): off the send loop, in small commits, and a
database that is away for a while loses nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from digest.db.models import Delivery
from digest.send.claim import claim, release_orphans
from digest.send.claimed import Claimed
from digest.send.outcome import Outcome
from digest.send.plan import plan
from digest.send.record import Attempt, OutcomeNotRecorded, Recorder, RecordOptions
from digest.send.retry import RetryPolicy
from subscribers.models import Suppression
from tests.helpers.outbox import NOW, due_world, statuses

OK = Outcome("sent", 250, "2.0.0 ok")


class FixedDelay(RetryPolicy):
    """A policy without jitter: `base` times the attempt number."""

    def delay(self, attempt: int, rng: object = None) -> timedelta:  # type: ignore[override]
        return self.base * attempt


class FakeTime:
    """The recorder's clock and sleep: sleeping moves the clock, and takes no time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _claimed(engine: Engine, session: Session, n: int) -> list[Claimed]:
    _, selection = due_world(engine, session, n=n)
    plan(engine, selection, NOW)
    return claim(engine, list_id=selection.list_id, now=NOW, limit=10)


def _record(recorder: Recorder, *attempts: Attempt) -> list[str]:
    recorder.start()
    for attempt in attempts:
        recorder.submit(attempt)
    recorder.close()
    return [status for _, status in recorder.recorded]


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_each_outcome_gets_its_status_and_a_hard_bounce_is_suppressed(
    engine: Engine, session: Session
) -> None:
    sent, later, bounced = _claimed(engine, session, 3)
    assert release_orphans(engine) == 3  # a crash: the next attempt is the second
    sent, later, bounced = claim(engine, list_id=sent.list_id, now=NOW, limit=10)
    recorder = Recorder(engine, FixedDelay(timedelta(minutes=5), deadline=timedelta(hours=6)))
    done = _record(
        recorder,
        Attempt(sent, OK, NOW, "<m1@x>"),
        Attempt(later, Outcome.from_reply(451, "try later"), NOW, "<m2@x>"),
        Attempt(bounced, Outcome.from_reply(550, "5.1.1 no such user"), NOW, "<m3@x>"),
    )
    assert done == ["sent", "failed_temporary", "failed_permanent"]
    session.expire_all()
    assert [s.email for s in session.exec(select(Suppression))] == [bounced.email]
    retry = session.get(Delivery, later.id)
    # second attempt (the first was lost in the crash): 5 min x 2
    assert retry is not None and retry.next_attempt_at == NOW + timedelta(minutes=10)
    row = session.get(Delivery, sent.id)
    assert row is not None and (row.message_id, row.sent_at) == ("<m1@x>", NOW)


def test_a_refusal_on_our_side_stays_retryable_and_suppresses_nobody(
    engine: Engine, session: Session
) -> None:
    relay, sender, bounced = _claimed(engine, session, 3)
    recorder = Recorder(engine, FixedDelay(timedelta(minutes=5)))
    done = _record(
        recorder,
        Attempt(relay, Outcome.from_reply(554, "5.7.1 Relay access denied", "RCPT"), NOW),
        Attempt(sender, Outcome.from_reply(553, "5.1.8 bad sender", "MAIL"), NOW),
        Attempt(bounced, Outcome.from_reply(550, "5.1.1 no such user", "RCPT"), NOW),
    )
    assert done == ["failed_temporary", "failed_temporary", "failed_permanent"]
    session.expire_all()
    (suppression,) = session.exec(select(Suppression)).all()
    assert (suppression.email, suppression.smtp_code, suppression.enhanced) == (
        bounced.email,
        550,
        "5.1.1",
    )
    assert (suppression.delivery_id, suppression.edition_id, suppression.list_id) == (
        bounced.id,
        bounced.edition_id,
        bounced.list_id,
    )


def test_retries_stop_at_the_deadline(engine: Engine, session: Session) -> None:
    (item,) = _claimed(engine, session, 1)
    policy = FixedDelay(timedelta(hours=2), deadline=timedelta(hours=1))
    busy = Outcome.from_reply(421, "busy")
    # the last retry is moved to the deadline itself
    assert _record(Recorder(engine, policy), Attempt(item, busy, NOW)) == ["failed_temporary"]
    later = NOW + timedelta(hours=1)
    (item,) = claim(engine, list_id=item.list_id, now=later, limit=10)
    assert _record(Recorder(engine, policy), Attempt(item, busy, later)) == ["failed_permanent"]
    session.expire_all()
    row = session.get(Delivery, item.id)
    assert row is not None and row.smtp_message.startswith("gave up after 2 attempts")
    assert session.exec(select(Suppression)).all() == []  # a timeout is not a bounce


def test_a_lone_outcome_is_committed_without_waiting_for_a_batch(
    engine: Engine, session: Session
) -> None:
    # Group commit: nothing waits for a batch to fill, so a crash right after a message went
    # out finds its row already `sent` (it is not sent twice).
    (first,) = _claimed(engine, session, 1)
    recorder = Recorder(engine, RetryPolicy(), RecordOptions(batch=100))
    recorder.start()
    recorder.submit(Attempt(first, OK, NOW))
    _wait_for(lambda: list(statuses(session).values()).count("sent") == 1, "a lone outcome")
    recorder.close()


def test_queued_outcomes_share_a_commit_of_at_most_a_batch(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _claimed(engine, session, 5)
    sizes: list[int] = []
    real = Recorder._commit

    def commit(recorder: Recorder, attempts: list[Attempt]) -> list[str]:
        sizes.append(len(attempts))
        return real(recorder, attempts)

    monkeypatch.setattr(Recorder, "_commit", commit)
    recorder = Recorder(engine, RetryPolicy(), RecordOptions(batch=2))
    for item in items:  # queued before the thread starts: all waiting at its first commit
        recorder._queue.put(Attempt(item, OK, NOW))
    recorder.start()
    recorder.close()
    assert sizes == [2, 2, 1]
    assert sorted(statuses(session).values()).count("sent") == 5


def test_closing_commits_what_is_still_waiting(engine: Engine, session: Session) -> None:
    items = _claimed(engine, session, 3)
    recorder = Recorder(engine, RetryPolicy(), RecordOptions(batch=100))
    assert _record(recorder, *(Attempt(item, OK, NOW) for item in items)) == ["sent"] * 3
    assert sorted(statuses(session).values()) == ["sent"] * 3 + ["skipped"]


def _unreachable(times: int) -> Callable[[Recorder, list[Attempt]], list[str]]:
    """The recorder's commits, failing `times` times as during a database restart."""
    real = Recorder._commit
    left = [times]

    def commit(recorder: Recorder, attempts: list[Attempt]) -> list[str]:
        if left[0] > 0:
            left[0] -= 1
            raise OperationalError("UPDATE delivery", {}, Exception("server closed the connection"))
        return real(recorder, attempts)

    return commit


def test_outcomes_are_recorded_once_the_database_is_back(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _claimed(engine, session, 2)
    fake = FakeTime()
    recorder = Recorder(engine, RetryPolicy(), clock=fake.clock, sleep=fake.sleep)
    monkeypatch.setattr(Recorder, "_commit", _unreachable(2))  # cut off twice, then back
    assert _record(recorder, Attempt(first, OK, NOW), Attempt(second, OK, NOW)) == ["sent"] * 2
    assert fake.sleeps == [0.05, 0.1]  # backing off between tries
    assert sorted(statuses(session).values()) == ["sent", "sent", "skipped"]


def test_outcomes_that_cannot_be_recorded_leave_their_rows_sending(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database stays away longer than the recorder waits: the rows are not marked sent,
    # nor unsent: they stay `sending`, to be claimed again; once it has given up the
    # recorder takes no more outcomes, and the caller hears why.
    first, second = _claimed(engine, session, 2)
    fake = FakeTime()
    options = RecordOptions(batch=1, patience=30)
    recorder = Recorder(engine, RetryPolicy(), options, clock=fake.clock, sleep=fake.sleep)
    monkeypatch.setattr(Recorder, "_commit", _unreachable(1_000))
    recorder.start()
    recorder.submit(Attempt(first, OK, NOW))
    _wait_for(lambda: _failed(recorder), "the recorder to give up")
    assert 25 <= sum(fake.sleeps) <= 30  # retried for its patience, in virtual time
    with pytest.raises(OutcomeNotRecorded, match="stay `sending`"):
        recorder.submit(Attempt(second, OK, NOW))
    with pytest.raises(OutcomeNotRecorded):
        recorder.close()
    assert sorted(statuses(session).values()) == ["sending", "sending", "skipped"]
    assert release_orphans(engine, first.list_id) == 2  # the next send takes them again


def _failed(recorder: Recorder) -> bool:
    try:
        recorder.check()
    except OutcomeNotRecorded:
        return True
    return False


def test_an_unexpected_error_in_the_recorder_reaches_the_caller(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    (item,) = _claimed(engine, session, 1)

    def broken(recorder: Recorder, attempts: list[Attempt]) -> list[str]:
        raise ValueError("a bug")

    monkeypatch.setattr(Recorder, "_commit", broken)
    with pytest.raises(ValueError, match="a bug"):
        _record(Recorder(engine, RetryPolicy()), Attempt(item, OK, NOW))
    assert statuses(session)[item.subscriber_id] == "sending"
