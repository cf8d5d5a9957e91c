"""The edition state machine: which transitions are allowed, and the SQL the sending side runs.

    draft ─approve→ approved ─(new content)→ draft
    draft, approved, sent ─plan→ sending ─finish→ sent
    any but held ─hold→ held ─release→ sending (if it had started), approved or draft

Editors' transitions (approve, hold, release, withdrawing an approval) are made on the ORM
object by `digest.editions.workflow`, checked here with `move`; the sending side's (plan,
finish) are plain SQL functions taking a Connection, for planning and the send loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection

from digest.db.bulk import DriverSql, driver_date
from digest.db.models import DeliveryStatus, EditionStatus
from digest.db.tables import EDITION

DRAFT, APPROVED, HELD = EditionStatus.DRAFT, EditionStatus.APPROVED, EditionStatus.HELD
SENDING, SENT = EditionStatus.SENDING, EditionStatus.SENT

# Controls can change while nothing of the edition has gone out.
EDITABLE = (DRAFT, APPROVED, HELD)
# Deliveries that still have to go out (or be tried again): an edition with any is not sent.
UNFINISHED = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.FAILED_TEMPORARY)


@dataclass(frozen=True)
class Transition:
    """A named move of an edition from one of `sources` to `target`."""

    name: str
    sources: frozenset[EditionStatus]
    target: EditionStatus


APPROVE = Transition("approve", frozenset({DRAFT, HELD}), APPROVED)
WITHDRAW = Transition("withdraw approval", frozenset({APPROVED}), DRAFT)  # content changed
HOLD = Transition("hold", frozenset({DRAFT, APPROVED, SENDING, SENT}), HELD)
RESUME = Transition("release (started)", frozenset({HELD}), SENDING)
RELEASE_APPROVED = Transition("release (approved)", frozenset({HELD}), APPROVED)
RELEASE_DRAFT = Transition("release (draft)", frozenset({HELD}), DRAFT)
# Planning deliveries: made ahead by editors (draft, approved), or done for the earlier time
# zones (sent). A held edition stays held.
PLAN = Transition("plan", frozenset({DRAFT, APPROVED, SENT}), SENDING)
FINISH = Transition("finish", frozenset({SENDING}), SENT)

TRANSITIONS = (APPROVE, WITHDRAW, HOLD, RESUME, RELEASE_APPROVED, RELEASE_DRAFT, PLAN, FINISH)


class NotAllowed(ValueError):
    """A transition from a state it does not start from (a bug: callers check first)."""


def move(status: str, transition: Transition) -> EditionStatus:
    """The state `transition` leads to from `status`; raises NotAllowed if it cannot."""
    if EditionStatus(status) not in transition.sources:
        raise NotAllowed(f"cannot {transition.name} an edition that is {status}")
    return transition.target


def sendable(alias: str) -> str:
    """SQL condition on the edition table under `alias`: its deliveries may go out now."""
    return f"{alias}.status <> '{HELD.value}'"


def start_sending(
    connection: Connection,
    list_id: int,
    dates: Sequence[date],
    now: datetime,
    drafts: Sequence[date] = (),
) -> dict[date, int]:
    """Planning: the editions of `dates` exist and are `sending` (PLAN), those of `drafts`
    (due, waiting for an editor) exist as drafts. Returns the ids of `dates`' editions."""
    sql = DriverSql(connection)
    stamp = sql.stamp(EDITION.c.created_at, now)
    sql.many(
        "INSERT INTO edition (list_id, local_date, status, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (list_id, local_date) DO NOTHING",
        [(list_id, d.isoformat(), SENDING.value, stamp) for d in dates]
        + [(list_id, d.isoformat(), DRAFT.value, stamp) for d in drafts],
    )
    sources = sorted(s.value for s in PLAN.sources)
    sql.many(
        "UPDATE edition SET status = ? "
        f"WHERE list_id = ? AND local_date = ? AND status IN ({', '.join('?' * len(sources))})",
        [(PLAN.target.value, list_id, d.isoformat(), *sources) for d in dates],
    )
    found = sql.pairs(
        "SELECT local_date, id FROM edition WHERE list_id = ? AND local_date IN ({in})",
        [d.isoformat() for d in dates],
        list_id,
    )
    return {driver_date(k): v for k, v in found.items()}


def finish_sent(connection: Connection, list_id: int) -> int:
    """FINISH: the list's `sending` editions with nothing left to send or retry are `sent`.

    Returns how many editions moved."""
    sql = DriverSql(connection)
    m = sql.mark
    (source,) = FINISH.sources
    result = connection.exec_driver_sql(
        f"UPDATE edition SET status = {m} WHERE list_id = {m} AND status = {m} "
        f"AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.edition_id = edition.id "
        f"AND d.status IN ({sql.marks(len(UNFINISHED))}))",
        (FINISH.target.value, list_id, source.value, *(s.value for s in UNFINISHED)),
    )
    return int(result.rowcount or 0)


def hold_sending(
    connection: Connection, edition_ids: Sequence[int], *, actor: str, detail: str, now: datetime
) -> list[int]:
    """HOLD from the sending side (the run's breaker): those of `edition_ids` that can be held
    are, each with a line of history (`editor_action`) saying why. Returns the ids held."""
    if not edition_ids:
        return []
    sql = DriverSql(connection)
    m = sql.mark
    sources = sorted(s.value for s in HOLD.sources)
    held = [
        row[0]
        for row in connection.exec_driver_sql(
            f"UPDATE edition SET status = {m} WHERE id IN ({sql.marks(len(edition_ids))}) "
            f"AND status IN ({sql.marks(len(sources))}) RETURNING id",
            (HOLD.target.value, *edition_ids, *sources),
        )
    ]
    stamp = sql.stamp(EDITION.c.created_at, now)
    sql.many(
        "INSERT INTO editor_action (edition_id, actor, action, detail, at) VALUES (?, ?, ?, ?, ?)",
        [(edition_id, actor[:320], "hold", detail[:1000], stamp) for edition_id in sorted(held)],
    )
    return sorted(held)
