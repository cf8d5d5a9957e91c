"""Inbound events as people read them: filtered lists, one address's story, one-line rendering.

Read-only: the rows are written by the processing (digest/inbound/process.py). An address's
story gathers the events that name it (any spelling: by `email_key`) and those traced to its
subscriber (a mailto unsubscribe may come from another address), with why it is suppressed
now and every lift of an earlier suppression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, or_, select
from sqlmodel import Session

from digest.db.models import InboundKind
from digest.db.tables import INBOUND_EVENT
from digest.errors import InvalidInput, NotFound
from digest.text.controls import clean_line
from subscribers import suppressions
from subscribers.models import LiftedSuppression, Suppression
from subscribers.tables import ALIAS, MAILING_LIST, SUBSCRIBER
from subscribers.validate import email_key

KINDS = tuple(kind.value for kind in InboundKind)
DIAGNOSTIC_CHARS = 120  # of the diagnostic shown on one line (the JSON has it whole)


@dataclass(frozen=True)
class EventFilter:
    """Which events a list shows: received at or after `since`, of one kind, list or
    edition; at most `limit`, newest first."""

    since: datetime | None = None
    kind: InboundKind | None = None
    list_id: int | None = None
    edition_id: int | None = None
    limit: int = 50


def parse_kind(text: str) -> InboundKind:
    """A `--type` value; InvalidInput naming the choices for anything else."""
    try:
        return InboundKind(text.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"--type {clean_line(text)[:40]!r} is not a kind of inbound event: use one of "
            + ", ".join(KINDS)
        ) from None


@dataclass(frozen=True)
class EventLine:
    """One stored inbound event, with its list's slug."""

    id: int
    received_at: datetime
    kind: str
    source: str
    address: str
    status: str
    smtp_code: int | None
    diagnostic: str
    reason: str
    action: str
    delivery_id: int | None
    subscriber_id: int | None
    list_id: int | None
    list_slug: str | None
    edition_id: int | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat(timespec="seconds")
        return data

    def line(self) -> str:
        """The event on one line: when, kind, how it came in, address, code, where, outcome."""
        code = " ".join(str(c) for c in (self.smtp_code, self.status) if c)
        where = [f"list {self.list_slug}" if self.list_slug else ""]
        where.append(f"edition {self.edition_id}" if self.edition_id is not None else "")
        where.append(f"delivery {self.delivery_id}" if self.delivery_id is not None else "")
        why = self.diagnostic or self.reason
        if len(why) > DIAGNOSTIC_CHARS:
            why = why[: DIAGNOSTIC_CHARS - 1] + "…"
        parts = [
            self.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            self.kind,
            self.source,
            self.address or "(no address)",
            code,
            " ".join(w for w in where if w),
            f"→ {self.action}" if self.action else "",
            f"· {why}" if why else "",
        ]
        return clean_line("  ".join(p for p in parts if p))


def list_events(connection: Connection, wanted: EventFilter) -> list[EventLine]:
    """The events `wanted` selects, newest first."""
    if wanted.limit < 1:
        raise InvalidInput(f"--limit {wanted.limit}: give at least 1")
    query = _query()
    if wanted.since is not None:
        query = query.where(INBOUND_EVENT.c.received_at >= wanted.since)
    if wanted.kind is not None:
        query = query.where(INBOUND_EVENT.c.kind == wanted.kind.value)
    if wanted.list_id is not None:
        query = query.where(INBOUND_EVENT.c.list_id == wanted.list_id)
    if wanted.edition_id is not None:
        query = query.where(INBOUND_EVENT.c.edition_id == wanted.edition_id)
    return [_line(row) for row in connection.execute(query.limit(wanted.limit))]


def address_events(connection: Connection, email: str) -> list[EventLine]:
    """Every event naming `email` (in any spelling) or traced to its subscriber (and the ids
    merged into it), newest first."""
    key = email_key(email)
    if not key or "\x00" in key:  # no address holds one (and PostgreSQL refuses it)
        return []
    person = select(SUBSCRIBER.c.id).where(SUBSCRIBER.c.email_key == key).scalar_subquery()
    merged = select(ALIAS.c.id).where(ALIAS.c.subscriber_id == person)
    query = _query().where(
        or_(
            INBOUND_EVENT.c.email_key == key,
            INBOUND_EVENT.c.subscriber_id == person,
            INBOUND_EVENT.c.subscriber_id.in_(merged),
        )
    )
    return [_line(row) for row in connection.execute(query)]


@dataclass(frozen=True)
class AddressStory:
    """What came back for one address, and why it is (or was) suppressed."""

    email: str
    suppression: dict[str, Any] | None
    lifted: list[dict[str, Any]]
    events: list[EventLine]

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "suppressed": self.suppression is not None,
            "suppression": self.suppression,
            "lifted": self.lifted,
            "events": [e.as_dict() for e in self.events],
        }

    def summary(self) -> list[str]:
        """Lines saying whether the address is suppressed, why, and what was lifted."""
        lines = []
        if self.suppression is None:
            lines.append(f"{self.email}: not suppressed")
        else:
            lines.append(f"{self.email}: suppressed — {_why(self.suppression)}")
        for lift in self.lifted:
            lines.append(
                f"lifted {lift['lifted_at']} by {lift['lifted_by']}: {lift['why']} "
                f"(was {_why(lift)}, suppressed {lift['suppressed_at']})"
            )
        return [clean_line(line) for line in lines]


def address_story(session: Session, email: str) -> AddressStory:
    """The story of `email`: its suppression, the lifts, every inbound event, newest first."""
    text = clean_line(email).strip()
    if not text:
        raise InvalidInput("give an email address")
    found = _suppression(session, text)
    return AddressStory(
        email=found.email if found is not None else text,
        suppression=_suppression_dict(found) if found is not None else None,
        lifted=[_lift_dict(line) for line in reversed(suppressions.lifted(session, text))],
        events=address_events(session.connection(), text),
    )


def _suppression(session: Session, email: str) -> Suppression | None:
    if "\x00" in email_key(email):
        return None
    try:
        return suppressions.find_suppression(session, email)
    except NotFound:
        return None


def _suppression_dict(found: Suppression) -> dict[str, Any]:
    return {
        "reason": found.reason,
        "smtp_code": found.smtp_code,
        "enhanced": found.enhanced,
        "note": found.note,
        "since": found.created_at.isoformat(timespec="seconds"),
        "delivery_id": found.delivery_id,
        "edition_id": found.edition_id,
        "list_id": found.list_id,
    }


def _lift_dict(line: LiftedSuppression) -> dict[str, Any]:
    return {
        "reason": line.reason,
        "smtp_code": line.smtp_code,
        "enhanced": line.enhanced,
        "note": line.note,
        "delivery_id": line.delivery_id,
        "edition_id": line.edition_id,
        "suppressed_at": line.suppressed_at.isoformat(timespec="seconds"),
        "lifted_at": line.lifted_at.isoformat(timespec="seconds"),
        "lifted_by": line.lifted_by,
        "why": line.why,
    }


def _why(data: dict[str, Any]) -> str:
    """A suppression's reason, code, note and origin on one line."""
    code = " ".join(str(c) for c in (data.get("smtp_code"), data.get("enhanced")) if c)
    origin = [
        f"delivery {data['delivery_id']}" if data.get("delivery_id") is not None else "",
        f"edition {data['edition_id']}" if data.get("edition_id") is not None else "",
    ]
    parts = [
        str(data["reason"]),
        code,
        f"since {data['since']}" if data.get("since") else "",
        ", ".join(o for o in origin if o),
        f"· {data['note']}" if data.get("note") else "",
    ]
    return " ".join(p for p in parts if p)


def _query() -> Select[Any]:
    return (
        select(INBOUND_EVENT, MAILING_LIST.c.slug.label("list_slug"))
        .select_from(
            INBOUND_EVENT.outerjoin(MAILING_LIST, MAILING_LIST.c.id == INBOUND_EVENT.c.list_id)
        )
        .order_by(INBOUND_EVENT.c.received_at.desc(), INBOUND_EVENT.c.id.desc())
    )


def _line(row: Any) -> EventLine:
    return EventLine(
        id=row.id,
        received_at=row.received_at,
        kind=row.kind,
        source=row.source,
        address=row.address,
        status=row.status,
        smtp_code=row.smtp_code,
        diagnostic=row.diagnostic,
        reason=row.reason,
        action=row.action,
        delivery_id=row.delivery_id,
        subscriber_id=row.subscriber_id,
        list_id=row.list_id,
        list_slug=row.list_slug,
        edition_id=row.edition_id,
    )
