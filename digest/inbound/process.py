"""Processing a batch of inbound messages (or providers' events): read, store, identify,
apply the policy, brake, all in one transaction per batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from digest.clock import utcnow
from digest.config import Settings
from digest.db.models import InboundKind
from digest.errors import DigestError
from digest.inbound.brake import Braked, BrakeOptions, apply_brake, report
from digest.inbound.classify import Reader
from digest.inbound.identify import IdentifyOptions, Lookup
from digest.inbound.policy import Decision, Policy, PolicyOptions
from digest.inbound.store import Stored, insert_events, store_messages
from digest.inbound.verdicts import Received, Verdict
from digest.text.controls import clean_line
from digest.tracking.tokens import Signer
from subscribers.validate import email_key

ATTEMPTS = 3  # a unique-key race with a concurrent processor: the batch runs again
_BRAKING = (InboundKind.HARD_BOUNCE, InboundKind.COMPLAINT)


class InboundUnavailable(DigestError):
    """The database cannot be reached, or stayed locked past its timeout: nothing of the
    batch was written; try again later (SMTP 451, exit status 75)."""


@dataclass(frozen=True, slots=True)
class Handled:
    """What one message (or event) came to: its kind (UNKNOWN when it could not be applied),
    what was done, whether it was a duplicate of one processed before, its event row."""

    kind: InboundKind
    action: str
    duplicate: bool
    event_id: int | None
    reason: str
    delivery_id: int | None = None


def _bounded(verdict: Verdict) -> Verdict:
    """The verdict's outside text as stored: one line, no controls, within the columns."""
    external = clean_line(verdict.external_id or "")[:255] or None
    code = verdict.smtp_code if verdict.smtp_code and 100 <= verdict.smtp_code <= 999 else None
    return dataclasses.replace(verdict, external_id=external, smtp_code=code)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Processor:
    """Reads and applies inbound messages batch by batch (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        reader: Reader | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self._reader = reader
        self.signer = Signer(settings.web.secret_key)
        self.identify_options = IdentifyOptions.from_settings(settings)
        self.policy_options = PolicyOptions.from_settings(settings)
        self.brake_options = BrakeOptions.from_settings(settings)
        self.lock_timeout_ms = int(settings.database.busy_timeout_seconds * 1000)

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader.from_settings(self.settings)
        return self._reader

    def process(self, batch: Sequence[Received]) -> list[Handled]:
        """Read each message, then `apply` the batch."""
        reader = self.reader
        return self.apply([(received, reader.read(received)) for received in batch])

    def apply(self, items: Sequence[tuple[Received, Verdict]]) -> list[Handled]:
        """Store and apply the batch in one transaction: all of it, or nothing (raises
        InboundUnavailable when the database is unreachable or stays locked)."""
        if not items:
            return []
        bounded = [(received, _bounded(verdict)) for received, verdict in items]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                handled, braked = self._transaction(bounded)
            except IntegrityError:
                if attempt == ATTEMPTS:
                    raise
                continue  # a concurrent batch stored the same message: it is a duplicate now
            except (OperationalError, InterfaceError, PoolTimeout) as exc:
                raise InboundUnavailable(
                    f"database unavailable, {len(items)} inbound message(s) not processed "
                    f"(nothing written; try again later): {type(exc).__name__}"
                ) from exc
            report(braked)
            return handled
        raise AssertionError("unreachable")

    def _transaction(
        self, items: Sequence[tuple[Received, Verdict]]
    ) -> tuple[list[Handled], list[Braked]]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                result = self._apply(session, items)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return result

    def _apply(
        self, session: Session, items: Sequence[tuple[Received, Verdict]]
    ) -> tuple[list[Handled], list[Braked]]:
        connection = session.connection()
        if connection.dialect.name == "postgresql":  # wait for row locks no longer than SQLite
            session.execute(text(f"SET LOCAL lock_timeout = '{self.lock_timeout_ms}ms'"))
        now = self.clock()
        stored = store_messages(connection, items, now)
        fresh = [i for i, one in enumerate(stored) if not one.duplicate]
        lookup = Lookup(connection, [items[i] for i in fresh], self.identify_options, now)
        founds = {i: lookup.find(*items[i]) for i in fresh}
        policy = Policy(session, self.policy_options, self.signer, now)
        policy.prepare([(items[i][1], founds[i]) for i in fresh])
        decisions: dict[int, Decision] = {}
        rows: list[dict[str, Any]] = []
        for i in fresh:
            received, verdict = items[i]
            at = _aware(verdict.occurred_at or received.received_at or now)
            decisions[i] = policy.decide(verdict, founds[i], at, received.source)
            rows.append(_event_row(received, verdict, decisions[i], stored[i], at))
        policy.flush()
        event_ids = dict(zip(fresh, insert_events(connection, rows), strict=True))
        touched = {d.edition_id for d in decisions.values() if d.kind in _BRAKING and d.edition_id}
        braked = apply_brake(connection, touched, self.brake_options, now)
        return _handled(items, stored, decisions, event_ids), braked


def _event_row(
    received: Received, verdict: Verdict, decision: Decision, stored: Stored, at: datetime
) -> dict[str, Any]:
    target = decision.target
    address = clean_line(verdict.address)[:320] or (target.email if target else "")
    key = target.email_key if target is not None else email_key(address)[:320]
    return {
        "kind": decision.kind.value,
        "source": received.source.value,
        "received_at": at,
        "message_id": stored.message_id,
        "delivery_id": decision.delivery_id,
        "subscriber_id": decision.subscriber_id,
        "list_id": decision.list_id,
        "edition_id": decision.edition_id,
        "address": address,
        "email_key": clean_line(key)[:320],
        "status": clean_line(verdict.status)[:16],
        "smtp_code": verdict.smtp_code,
        "diagnostic": clean_line(verdict.diagnostic)[:1000],
        "reason": clean_line(decision.reason)[:300],
        "action": clean_line(decision.action)[:100],
        "external_id": verdict.external_id,
    }


def _handled(
    items: Sequence[tuple[Received, Verdict]],
    stored: Sequence[Stored],
    decisions: dict[int, Decision],
    event_ids: dict[int, int],
) -> list[Handled]:
    """One Handled per item, in order; a duplicate points at its first processing's event
    (earlier in the batch, or before)."""
    first_of_message: dict[int | None, int] = {}
    first_of_external: dict[str | None, int] = {}
    for i in sorted(event_ids):
        first_of_message.setdefault(stored[i].message_id, event_ids[i])
        first_of_external.setdefault(items[i][1].external_id, event_ids[i])
    handled: list[Handled] = []
    for i, ((_, verdict), one) in enumerate(zip(items, stored, strict=True)):
        decision = decisions.get(i)
        if decision is None:
            ext = verdict.external_id
            event = one.first_event or (
                first_of_external.get(ext) if ext else first_of_message.get(one.message_id)
            )
            why = "provider event seen before" if ext else "the same message was processed before"
            handled.append(Handled(verdict.kind, "none: duplicate", True, event, why))
            continue
        handled.append(
            Handled(
                decision.kind,
                decision.action,
                False,
                event_ids[i],
                decision.reason,
                decision.delivery_id,
            )
        )
    return handled
