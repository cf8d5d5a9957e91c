"""Unsubscribing that is never lost: applied at once when the database answers quickly,
spooled to a file when it is busy, and the spool applied in the background within seconds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from digest.db.engine import is_sqlite
from digest.db.models import EventKind
from digest.errors import NotFound
from digest.web.context import WebContext, client_ip, user_agent
from digest.web.events import PendingEvent
from digest.web.spool import Spool, SpooledUnsubscribe, read
from subscribers.consent import Membership, membership, withdraw
from subscribers.people import Consent

log = logging.getLogger(__name__)
BUSY = (OperationalError, PoolTimeout)  # locked, timed out, or unreachable: spool it


@dataclass(frozen=True)
class Left:
    """What an unsubscribe request came to: the lists changed (None: spooled, applied
    shortly), and the subscription for the page (None when the database could not say)."""

    changed: list[int] | None
    found: Membership | None

    def subscriber_id(self, linked: int) -> int:
        """Who was changed: the link's id may name a duplicate merged into another row."""
        kept = self.found.subscriber.id if self.found is not None else None
        return kept or linked


@contextmanager
def brief_session(engine: Engine, seconds: float) -> Iterator[Session]:
    """A committing session that waits at most `seconds` for a lock, then raises."""
    with engine.connect() as connection:
        sqlite = is_sqlite(engine)
        if sqlite:  # the pooled connection's own timeout is put back afterwards
            usual = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(seconds * 1000)}")
            connection.commit()
        try:
            with Session(bind=connection, expire_on_commit=False) as session:
                if not sqlite:
                    wait = f"{int(seconds * 1000)}ms"
                    session.execute(text(f"SET LOCAL lock_timeout = '{wait}'"))
                    session.execute(text(f"SET LOCAL statement_timeout = '{wait}'"))
                yield session
                session.commit()
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql(f"PRAGMA busy_timeout={int(usual or 0)}")
                connection.commit()


def leave(
    web: WebContext, spool: Spool, request: Request, ids: tuple[int, int], every_list: bool
) -> Left:
    """Withdraw now, or spool when the database is busy (run in a worker thread).

    NotFound (a subscription that is gone) goes to the caller; nothing else does.
    """
    subscriber_id, list_id = ids
    seconds = web.settings.web.unsubscribe_busy_seconds
    asked = SpooledUnsubscribe(
        subscriber_id,
        list_id,
        every_list,
        web.clock().isoformat(),
        client_ip(request),
        user_agent(request),
    )
    try:
        with brief_session(web.engine, seconds) as session:
            changed = _apply(session, asked)
            return Left(changed, membership(session, subscriber_id, list_id))
    except BUSY as exc:
        log.warning("database busy (%s): unsubscribe spooled", type(exc).__name__)
    spool.append(asked)
    try:
        with brief_session(web.engine, seconds) as session:  # WAL: reads still work
            return Left(None, membership(session, subscriber_id, list_id))
    except BUSY:
        return Left(None, None)


def _apply(session: Session, asked: SpooledUnsubscribe) -> list[int]:
    consent = Consent("web", asked.ip, asked.user_agent)
    return withdraw(
        session,
        subscriber_id=asked.subscriber_id,
        list_id=asked.list_id,
        every_list=asked.every_list,
        consent=consent,
        at=asked.moment,
    )


def apply_spool(web: WebContext, spool: Spool) -> int:
    """Apply every spooled unsubscribe (idempotent); returns how many were applied. A file
    stays until all of it is committed; while the database is busy, everything waits."""
    applied = 0
    for path in spool.take():
        entries = read(path)
        try:
            with brief_session(web.engine, web.settings.web.unsubscribe_busy_seconds) as session:
                changes = [(entry, _apply_one(session, entry)) for entry in entries]
        except BUSY:
            return applied
        for entry, changed in changes:
            for list_id in changed:
                web.events.record(_event(web, entry, list_id))
        path.unlink(missing_ok=True)
        applied += len(entries)
    return applied


def _apply_one(session: Session, entry: SpooledUnsubscribe) -> list[int]:
    try:
        return _apply(session, entry)
    except NotFound:  # erased meanwhile: nothing left to unsubscribe
        return []


def _event(web: WebContext, entry: SpooledUnsubscribe, list_id: int) -> PendingEvent:
    return PendingEvent(
        EventKind.UNSUBSCRIBE,
        entry.moment,
        subscriber_id=entry.subscriber_id,
        list_id=list_id,
        user_agent=entry.user_agent,
        ip=entry.ip,
    )
