"""The brake: an edition still sending whose hard bounces or complaints pass their rate is
held, so that its remaining deliveries wait for an editor (`digest editions release ID`).

The rates are over the edition's deliveries in status `sent` (a hard-bounced delivery stays
`sent`), and judged only from `[inbound] pause_min_sample` sent deliveries on: a few early
bounces of a small sample say little. Bounces and complaints count once per delivery.
Holding is what the run's breaker does (`hold_sending`): the dispatcher and the workers
claim only sendable editions, so their next claim takes nothing of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, distinct, func, select

from digest.config import Settings
from digest.db.models import DeliveryStatus, EditionStatus, InboundKind
from digest.db.tables import DELIVERY, EDITION, INBOUND_EVENT
from digest.editions.states import hold_sending

logger = logging.getLogger(__name__)
ACTOR = "inbound-brake"


@dataclass(frozen=True)
class BrakeOptions:
    bounce_rate: float
    complaint_rate: float
    min_sample: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BrakeOptions:
        inbound = settings.inbound
        return cls(
            inbound.pause_bounce_rate, inbound.pause_complaint_rate, inbound.pause_min_sample
        )


@dataclass(frozen=True, slots=True)
class Braked:
    """An edition the brake held, and why (the line logged and kept in its history)."""

    edition_id: int
    detail: str


def _sending(connection: Connection, edition_ids: list[int]) -> list[int]:
    return [
        eid
        for (eid,) in connection.execute(
            select(EDITION.c.id).where(
                EDITION.c.id.in_(edition_ids), EDITION.c.status == EditionStatus.SENDING.value
            )
        )
    ]


def _counts(connection: Connection, edition_id: int) -> tuple[int, int, int]:
    """(sent deliveries, hard-bounced deliveries, complained deliveries) of the edition."""
    sent = connection.execute(
        select(func.count()).where(
            DELIVERY.c.edition_id == edition_id, DELIVERY.c.status == DeliveryStatus.SENT.value
        )
    ).scalar_one()
    per_kind: dict[str, int] = dict(
        connection.execute(
            select(INBOUND_EVENT.c.kind, func.count(distinct(INBOUND_EVENT.c.delivery_id)))
            .where(
                INBOUND_EVENT.c.edition_id == edition_id,
                INBOUND_EVENT.c.delivery_id.is_not(None),
                INBOUND_EVENT.c.kind.in_(
                    (InboundKind.HARD_BOUNCE.value, InboundKind.COMPLAINT.value)
                ),
            )
            .group_by(INBOUND_EVENT.c.kind)
        ).all()
    )
    return (
        int(sent),
        int(per_kind.get(InboundKind.HARD_BOUNCE.value, 0)),
        int(per_kind.get(InboundKind.COMPLAINT.value, 0)),
    )


def _why(options: BrakeOptions, edition_id: int, counts: tuple[int, int, int]) -> str | None:
    sent, bounced, complained = counts
    if sent < options.min_sample:
        return None
    if bounced / sent > options.bounce_rate:
        what, count, limit = "hard-bounce", bounced, options.bounce_rate
    elif complained / sent > options.complaint_rate:
        what, count, limit = "complaint", complained, options.complaint_rate
    else:
        return None
    return (
        f"inbound brake: {what} rate {count / sent:.2%} ({count} of {sent} sent) is over "
        f"{limit:.2%}; check the list, then resume with `digest editions release {edition_id}`"
    )


def apply_brake(
    connection: Connection, edition_ids: Iterable[int], options: BrakeOptions, now: datetime
) -> list[Braked]:
    """Hold those of `edition_ids` (editions a batch's hard bounces or complaints touched)
    that are sending and over a rate. Returns what was held: `report` it once committed."""
    wanted = sorted(set(edition_ids))
    if not wanted:
        return []
    braked: list[Braked] = []
    for edition_id in _sending(connection, wanted):
        detail = _why(options, edition_id, _counts(connection, edition_id))
        if detail is None:
            continue
        if hold_sending(connection, [edition_id], actor=ACTOR, detail=detail, now=now):
            braked.append(Braked(edition_id, detail))
    return braked


def report(braked: Iterable[Braked]) -> None:
    """One ERROR line per edition held (after the hold is committed)."""
    for one in braked:
        logger.error("edition %d held: %s", one.edition_id, one.detail)
