"""Stopping a run its breaker tripped: rows back to the queue, editions held, one message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine

from digest.editions.states import hold_sending
from digest.send.breaker import BreakerTripped, Trip
from digest.send.claim import requeue
from digest.send.claimed import Claimed
from digest.send.record import Attempt

logger = logging.getLogger(__name__)

ACTOR = "breaker"


def halt(
    engine: Engine,
    trip: Trip,
    *,
    held_back: Sequence[Attempt],
    unsent: Sequence[Claimed],
    where: str,
    now: datetime,
) -> BreakerTripped:
    """Give back the rows of `held_back` (refused, never recorded) and `unsent` (claimed, not
    tried) to the queue, hold the editions concerned, and return the error to raise.

    The rows go back `queued`, as if never claimed: nothing of them was delivered, nothing is
    suppressed, and they go out when the edition is released."""
    rows = [a.claimed for a in held_back] + list(unsent)
    requeue(engine, [c.id for c in rows])
    editions = sorted({*trip.editions, *(c.edition_id for c in rows)})
    detail = trip.explain(where, given_back=len(rows), held=editions)
    with engine.begin() as connection:
        held = hold_sending(connection, editions, actor=ACTOR, detail=detail, now=now)
    message = trip.explain(where, given_back=len(rows), held=held)
    logger.error("%s", message)
    return BreakerTripped(message)
