"""Lifting suppressions: one address, or one run's hard bounces at once, each one audited.

A suppression only adds its row (`people.suppress`, and the outbox recorder for hard
bounces): subscriptions keep their state, so lifting it deletes the row and the address is
mailed again on the lists it is still subscribed to. What was lifted, by whom and why stays
in `lifted_suppression`. The bulk form only lifts hard bounces (replies of a relay that may
have been wrong), never complaints or manual suppressions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.errors import InvalidInput, NotFound
from digest.text.controls import clean_line
from subscribers.models import LiftedSuppression, Suppression, SuppressionReason
from subscribers.validate import email_key

_CODE = re.compile(r"[245]\d\d")
_ENHANCED = re.compile(r"[245](?:\.\d{1,3}){1,2}")
WHY_CHARS = 500


@dataclass(frozen=True)
class RunFilter:
    """Which hard bounces a bulk undo lifts: suppressed at or after `since`; optionally only
    those whose reply had `reason_code` ("550", "5.1.1", or a class such as "5.1"), or that
    came from one list or one edition."""

    since: datetime
    reason_code: str | None = None
    list_id: int | None = None
    edition_id: int | None = None


@dataclass(frozen=True)
class Audit:
    """Who lifts and why (both required: the audit line)."""

    actor: str
    why: str

    def checked(self) -> Audit:
        why, actor = clean_line(self.why).strip(), clean_line(self.actor).strip()
        if not why:
            raise InvalidInput("say why the suppression is lifted (--reason TEXT)")
        if len(why) > WHY_CHARS:
            raise InvalidInput(f"the reason has {len(why)} characters; at most {WHY_CHARS}")
        return Audit(actor[:320] or "unknown", why)


def find_suppression(session: Session, email: str) -> Suppression:
    """The suppression of `email`, in any spelling of the address; NotFound otherwise."""
    found = session.exec(
        select(Suppression).where(Suppression.email_key == email_key(email))
    ).first()
    if found is None:
        raise NotFound(f"{email.strip()!r} is not suppressed")
    return found


def unsuppress(session: Session, email: str, audit: Audit) -> LiftedSuppression:
    """Lift the suppression of one address (whatever its reason), with an audit line."""
    audit = audit.checked()
    return _lift(session, find_suppression(session, email), audit, utcnow())


def run_suppressions(session: Session, run: RunFilter) -> list[Suppression]:
    """The hard bounces `run` selects, oldest first (what a bulk undo would lift)."""
    query = select(Suppression).where(
        Suppression.reason == SuppressionReason.HARD_BOUNCE.value,
        col(Suppression.created_at) >= run.since,
    )
    if run.reason_code is not None:
        query = query.where(_code_filter(run.reason_code))
    if run.list_id is not None:
        query = query.where(Suppression.list_id == run.list_id)
    if run.edition_id is not None:
        query = query.where(Suppression.edition_id == run.edition_id)
    return list(session.exec(query.order_by(col(Suppression.created_at), col(Suppression.id))))


def unsuppress_run(
    session: Session, run: RunFilter, audit: Audit, *, dry_run: bool = False
) -> list[Suppression]:
    """Lift every hard bounce `run` selects (nothing with `dry_run`); returns them."""
    audit = audit.checked()
    found = run_suppressions(session, run)
    if not dry_run:
        now = utcnow()
        for suppression in found:
            _lift(session, suppression, audit, now)
    return found


def lifted(session: Session, email: str) -> Sequence[LiftedSuppression]:
    """The audit lines of an address (any case or IDN spelling), oldest first."""
    key = email_key(email)
    if "\x00" in key:  # no address holds one (and PostgreSQL refuses it in a query)
        return []
    return session.exec(
        select(LiftedSuppression)
        .where(LiftedSuppression.email_key == key)
        .order_by(col(LiftedSuppression.lifted_at), col(LiftedSuppression.id))
    ).all()


def _code_filter(code: str) -> ColumnElement[bool]:
    code = code.strip()
    if _CODE.fullmatch(code):
        return col(Suppression.smtp_code) == int(code)
    if _ENHANCED.fullmatch(code):
        exact = code.count(".") == 2
        enhanced = col(Suppression.enhanced)
        return enhanced == code if exact else enhanced.startswith(code + ".")
    raise InvalidInput(
        f"reason code {code!r}: give an SMTP code (550) or an enhanced status (5.1.1, or 5.1 "
        "for the whole class)"
    )


def _lift(
    session: Session, suppression: Suppression, audit: Audit, now: datetime
) -> LiftedSuppression:
    line = LiftedSuppression(
        email=suppression.email,
        email_key=suppression.email_key or email_key(suppression.email),
        reason=suppression.reason,
        note=suppression.note,
        smtp_code=suppression.smtp_code,
        enhanced=suppression.enhanced,
        delivery_id=suppression.delivery_id,
        edition_id=suppression.edition_id,
        list_id=suppression.list_id,
        suppressed_at=suppression.created_at,
        lifted_at=now,
        lifted_by=audit.actor,
        why=audit.why,
    )
    session.add(line)
    session.delete(suppression)
    session.flush()
    return line
