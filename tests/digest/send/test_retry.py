"""Retry timing (digest/send/retry.py): exponential backoff with full jitter, then a deadline."""

from __future__ import annotations

import datetime as dt
import random

from digest.config import load_settings
from digest.send.retry import RetryPolicy, retry_delay
from tests.helpers.paths import ROOT


def test_retry_delay_grows_with_full_jitter_inside_its_bounds() -> None:
    rng = random.Random(7)
    base, cap = dt.timedelta(seconds=60), dt.timedelta(minutes=30)
    for attempt in range(1, 12):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        draws = [retry_delay(attempt, base=base, cap=cap, rng=rng) for _ in range(200)]
        assert all(dt.timedelta(0) <= draw <= ceiling for draw in draws)
        assert max(draws) > 0.8 * ceiling and len(set(draws)) == len(draws)  # jittered
    means = [
        sum((retry_delay(a, rng=rng) for _ in range(400)), dt.timedelta()) / 400 for a in (1, 3, 5)
    ]
    assert means[0] < means[1] < means[2]
    assert retry_delay(10_000, rng=rng) <= cap


def test_retry_policy_stops_at_the_deadline() -> None:
    policy = RetryPolicy.from_settings(load_settings(ROOT / "settings.toml").smtp)
    assert (policy.base, policy.deadline) == (dt.timedelta(seconds=60), dt.timedelta(hours=6))
    first = dt.datetime(2025, 5, 1, 4, 0, tzinfo=dt.UTC)
    rng = random.Random(1)
    soon = policy.next_attempt(first_attempt=first, attempts=1, now=first, rng=rng)
    assert soon is not None and first <= soon <= first + dt.timedelta(seconds=60)
    late = first + dt.timedelta(hours=5, minutes=59)
    last = policy.next_attempt(first_attempt=first, attempts=9, now=late, rng=rng)
    assert last is not None and last <= first + policy.deadline
    after = first + dt.timedelta(hours=6)
    assert policy.next_attempt(first_attempt=first, attempts=10, now=after, rng=rng) is None
