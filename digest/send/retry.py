"""When a temporarily failed message is tried again: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import SmtpSettings


def retry_delay(
    attempt: int,
    *,
    base: timedelta = timedelta(seconds=60),
    cap: timedelta = timedelta(minutes=30),
    rng: random.Random | None = None,
) -> timedelta:
    """How long to wait after `attempt` failed attempts (1, 2, ...): exponential, full jitter.

    Uniform in [0, min(cap, base * 2**(attempt-1))]; full jitter spreads the retries of a
    whole batch that failed together (a throttled relay) instead of sending them back at once.
    The default cap is RFC 5321 §4.5.4.1's 30 minutes between an MTA's retries.
    """
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2.0 ** min(max(attempt, 1) - 1, 60))
    return timedelta(seconds=(rng or random).uniform(0.0, ceiling))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a temporarily failed message is tried again, and when we give up on it."""

    base: timedelta = timedelta(seconds=60)
    cap: timedelta = timedelta(minutes=30)
    deadline: timedelta = timedelta(hours=6)

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> RetryPolicy:
        """smtp.retry_base_seconds and smtp.retry_deadline_hours."""
        return cls(
            base=timedelta(seconds=smtp.retry_base_seconds),
            deadline=timedelta(hours=smtp.retry_deadline_hours),
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """`retry_delay` with this policy's base and cap."""
        return retry_delay(attempt, base=self.base, cap=self.cap, rng=rng)

    def next_attempt(
        self,
        *,
        first_attempt: datetime,
        attempts: int,
        now: datetime,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again after `attempts` failures; None once the deadline has passed.

        The last retry is moved forward to the deadline itself rather than skipped.
        """
        deadline = first_attempt + self.deadline
        if now >= deadline:
            return None
        return min(now + self.delay(attempts, rng), deadline)
