"""Soft bounces in a row: when enough of a subscriber's recent digests bounced softly, one
after another, the address is suppressed.

The rule, exactly. Take the subscriber's deliveries in status `sent` whose `sent_at` falls
within `[inbound] soft_bounce_days` before now, in the order they were sent. A delivery is
*bounced* when it has a soft- or hard-bounce event (several bounces of one delivery count
once). The *run* of a soft bounce is the unbroken sequence of bounced deliveries that holds
the delivery it is about: a sent delivery without a bounce (a successful delivery) ends it
on either side, and so does the window's start. Bounces arrive in any order (relays retry
for different lengths of time, providers' events and IMAP batches are not in order), so an
older delivery's bounce joins the run of later ones already bounced. A delivery sent after
the run that has no bounce yet does not reset it: its own bounce may still be on its way
(relays send a soft-bounce DSN only after days of retries). At `soft_bounce_limit`, the
address is suppressed. A soft bounce about a delivery sent before the window counts for
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from digest.db.models import DeliveryStatus, InboundKind
from digest.db.tables import DELIVERY, INBOUND_EVENT

_CHUNK = 500
BOUNCES = (InboundKind.SOFT_BOUNCE.value, InboundKind.HARD_BOUNCE.value)


@dataclass(frozen=True, slots=True)
class Count:
    """Where a soft bounce leaves its subscriber: `run` bounced deliveries in a row (0: the
    delivery is outside the window); `again`: this delivery had already bounced."""

    run: int
    again: bool


class SoftLedger:
    """The recent deliveries and bounces of the subscribers one batch soft-bounces, read once;
    bounces of the batch are added as they are applied."""

    def __init__(self, connection: Connection, subscriber_ids: Iterable[int], since: datetime):
        self.sent: dict[int, list[int]] = defaultdict(list)  # subscriber -> delivery ids, in order
        self.bounced: set[int] = set()
        wanted = sorted(set(subscriber_ids))
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            rows = connection.execute(
                select(DELIVERY.c.subscriber_id, DELIVERY.c.id)
                .where(
                    DELIVERY.c.subscriber_id.in_(part),
                    DELIVERY.c.status == DeliveryStatus.SENT.value,
                    DELIVERY.c.sent_at >= since,
                )
                .order_by(DELIVERY.c.sent_at, DELIVERY.c.id)
            )
            for subscriber_id, delivery_id in rows:
                self.sent[subscriber_id].append(delivery_id)
            ids = [d for s in part for d in self.sent.get(s, ())]
            for first in range(0, len(ids), _CHUNK):
                self.bounced.update(
                    delivery_id
                    for (delivery_id,) in connection.execute(
                        select(INBOUND_EVENT.c.delivery_id).where(
                            INBOUND_EVENT.c.delivery_id.in_(ids[first : first + _CHUNK]),
                            INBOUND_EVENT.c.kind.in_(BOUNCES),
                        )
                    )
                )

    def mark(self, delivery_id: int) -> None:
        """A bounce (hard or soft) of the batch: it counts for the next soft bounces."""
        self.bounced.add(delivery_id)

    def bounce(self, subscriber_id: int, delivery_id: int) -> Count:
        """Record a soft bounce of `delivery_id` and count its run (module docstring)."""
        again = delivery_id in self.bounced
        self.bounced.add(delivery_id)
        deliveries = self.sent.get(subscriber_id, [])
        if delivery_id not in deliveries:
            return Count(0, again)
        at = deliveries.index(delivery_id)
        run = 1
        for earlier in reversed(deliveries[:at]):
            if earlier not in self.bounced:
                break
            run += 1
        for later in deliveries[at + 1 :]:  # bounces that came in before this older one's
            if later not in self.bounced:
                break
            run += 1
        return Count(run, again)
