"""The consent history of a subscription: every step appended, none overwritten."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from digest.clock import utcnow
from subscribers.models import ConsentAction, ConsentEvent

if TYPE_CHECKING:  # people records its own steps here: a runtime import would be a cycle
    from subscribers.people import Consent


def record(
    session: Session,
    subscription_id: int,
    action: ConsentAction,
    consent: Consent,
    at: datetime | None = None,
) -> ConsentEvent:
    """Append one step (who asked or acted: IP, agent, source, consent text version)."""
    event = ConsentEvent(
        subscription_id=subscription_id,
        action=action,
        at=at or utcnow(),
        ip=(consent.ip or "")[:64] or None,
        user_agent=(consent.user_agent or "")[:512] or None,
        source=consent.source[:32],
        consent_version=consent.version[:32],
    )
    session.add(event)
    session.flush()
    return event


def history(session: Session, subscription_id: int) -> list[ConsentEvent]:
    """The steps of one subscription, oldest first."""
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.subscription_id == subscription_id)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        )
    )
