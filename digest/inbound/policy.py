"""What each kind of inbound verdict does to the audience: suppress, count, unsubscribe.

- hard bounce: the delivery's recipient is suppressed at once (reason `hard_bounce`, with
  the status, code, diagnostic and the delivery, edition and list it answered); the
  delivery itself stays `sent`.
- soft bounce: counted once per delivery; suppressed (`soft_bounce`) after
  `[inbound] soft_bounce_limit` bounced deliveries in a row (`digest.inbound.soft`).
- delayed, auto-reply, challenge, unknown: recorded, nothing else.
- complaint: unsubscribed from every list and suppressed (`complaint`), plus a tracking
  `complaint` event so that the edition's figures count it.
- mailto unsubscribe (a `u-` address, or a signed unsubscribe token in the subject): that
  list only, recorded as the web one-click is (history step with source `mailto`, and a
  tracking `unsubscribe` event). A provider's unsubscribe event (its signed webhook) does
  the same for the delivery it names, with the provider as the history's source.

A verdict that needs a delivery (bounces, complaints, unsubscribes) and has none, or names
somebody else than its recipient, becomes `unknown` with the reason. One `Policy` applies
one batch inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from digest.config import Settings
from digest.db.bulk import DriverSql
from digest.db.models import Delivery, DeliveryStatus, EventKind, InboundKind
from digest.db.tables import EVENT
from digest.errors import NotFound
from digest.inbound.identify import ESP_SOURCES, Found, Target
from digest.inbound.soft import SoftLedger
from digest.inbound.verdicts import Source, Verdict
from digest.text.controls import clean_line
from digest.tracking.tokens import BadToken, Purpose, Signer
from digest.tracking.verp import VerpKind
from subscribers.consent import withdraw
from subscribers.models import SuppressionReason
from subscribers.people import Consent, current_subscriber_id
from subscribers.tables import SUPPRESSION
from subscribers.withdrawals import Withdrawals

NEEDS_DELIVERY = frozenset(
    {InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE, InboundKind.COMPLAINT}
)
_CHUNK = 500
# A concurrent writer (the send path's recorder) may suppress the same address meanwhile.
_SUPPRESS = (
    "INSERT INTO suppression (email, email_key, reason, note, smtp_code, enhanced, "
    "delivery_id, edition_id, list_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_QUIET = {
    InboundKind.DELAYED: "none: delay warning",
    InboundKind.AUTO_REPLY: "none: auto-reply",
    InboundKind.CHALLENGE: "none: challenge-response",
    InboundKind.UNKNOWN: "none: unknown",
}


@dataclass(frozen=True)
class PolicyOptions:
    soft_limit: int
    soft_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyOptions:
        inbound = settings.inbound
        return cls(inbound.soft_bounce_limit, timedelta(days=inbound.soft_bounce_days))


@dataclass(frozen=True, slots=True)
class Decision:
    """What one verdict came to: its final kind, what was done, why, and who it was about."""

    kind: InboundKind
    action: str
    reason: str
    target: Target | None = None
    subscriber_id: int | None = None
    list_id: int | None = None
    delivery_id: int | None = None
    edition_id: int | None = None

    @classmethod
    def of(cls, kind: InboundKind, action: str, reason: str, target: Target | None) -> Decision:
        if target is None:
            return cls(kind, action, reason)
        return cls(
            kind,
            action,
            reason,
            target,
            target.subscriber_id,
            target.list_id,
            target.delivery_id,
            target.edition_id,
        )


def _unknown(verdict: Verdict, why: str) -> Decision:
    return Decision(InboundKind.UNKNOWN, "none: unknown", f"{verdict.kind.value}: {why}")


class Policy:
    """Applies the verdicts of one batch on `session` (the caller commits)."""

    def __init__(
        self, session: Session, options: PolicyOptions, signer: Signer, now: datetime
    ) -> None:
        self.session = session
        self.options = options
        self.signer = signer
        self.now = now
        self.events: list[dict[str, Any]] = []  # tracking events (complaint, unsubscribe)
        self.ledger: SoftLedger | None = None
        self.suppressed: dict[str, str] = {}  # email key -> reason, of the batch's recipients
        self.suppressions: list[tuple[Any, ...]] = []  # new rows, written by `flush`
        self.withdrawals = Withdrawals(session.connection(), Consent("complaint"))

    def prepare(self, pairs: Sequence[tuple[Verdict, Found]]) -> None:
        """Read once what the batch needs: its recipients' suppressions, and the recent
        deliveries and bounces of those it soft-bounces."""
        keys = sorted({found.target.email_key for _, found in pairs if found.target is not None})
        connection = self.session.connection()
        for start in range(0, len(keys), _CHUNK):
            query = select(SUPPRESSION.c.email_key, SUPPRESSION.c.reason).where(
                SUPPRESSION.c.email_key.in_(keys[start : start + _CHUNK])
            )
            self.suppressed.update({key: reason for key, reason in connection.execute(query)})
        self.withdrawals.prepare(
            found.target.subscriber_id
            for verdict, found in pairs
            if verdict.kind is InboundKind.COMPLAINT and found.target is not None
        )
        soft = {
            found.target.subscriber_id
            for verdict, found in pairs
            if verdict.kind is InboundKind.SOFT_BOUNCE and found.target is not None
        }
        if soft:
            since = self.now - self.options.soft_window
            self.ledger = SoftLedger(connection, soft, since)

    def decide(self, verdict: Verdict, found: Found, at: datetime, source: Source) -> Decision:
        kind = verdict.kind
        if kind is InboundKind.UNSUBSCRIBE:
            return self._unsubscribe(verdict, found, at, source)
        if kind in _QUIET:
            target = None if found.foreign else found.target
            return Decision.of(kind, _QUIET[kind], verdict.reason or found.reason, target)
        target = found.target
        if target is None or found.foreign:
            return _unknown(verdict, found.reason)
        reason = verdict.reason or found.reason
        if kind is InboundKind.HARD_BOUNCE:
            if self.ledger is not None:
                self.ledger.mark(target.delivery_id)
            action = self._suppress(target, SuppressionReason.HARD_BOUNCE, verdict, _note(verdict))
            return Decision.of(kind, action, reason, target)
        if kind is InboundKind.SOFT_BOUNCE:
            return Decision.of(kind, self._soft(target, verdict), reason, target)
        return Decision.of(kind, self._complaint(target, verdict, at), reason, target)

    def _soft(self, target: Target, verdict: Verdict) -> str:
        assert self.ledger is not None  # prepare() read it for every soft bounce's subscriber
        count = self.ledger.bounce(target.subscriber_id, target.delivery_id)
        limit = self.options.soft_limit
        if count.run == 0:
            days = f"{self.options.soft_window.total_seconds() / 86400:g}"
            return f"none: delivery not sent within {days} days"
        tally = f"soft {count.run}/{limit}"
        if count.again:
            return f"none: delivery already counted ({tally})"
        if count.run < limit:
            return tally
        note = f"{count.run} soft bounces in a row: {_note(verdict)}"
        action = self._suppress(target, SuppressionReason.SOFT_BOUNCE, verdict, note)
        return f"{action} ({tally})"

    def _complaint(self, target: Target, verdict: Verdict, at: datetime) -> str:
        changed = self.withdrawals.withdraw_all(target.subscriber_id, at)
        self._event(
            EventKind.COMPLAINT, target.delivery_id, target.subscriber_id, target.list_id, at
        )
        note = f"complaint: {verdict.reason}" if verdict.reason else "complaint"
        action = self._suppress(target, SuppressionReason.COMPLAINT, verdict, note)
        lists = ", ".join(str(i) for i in changed)
        return f"{action}, unsubscribed list {lists}" if changed else action

    def _unsubscribe(
        self, verdict: Verdict, found: Found, at: datetime, source: Source
    ) -> Decision:
        ref, target = verdict.verp, found.target
        consent = Consent("mailto")
        if ref is not None and ref.kind is VerpKind.UNSUBSCRIBE and target is not None:
            # The signed u- address is the authority, as the link's token is on the web:
            # the sender's address is recorded, not compared (people write from aliases).
            how = f"by VERP u- token of delivery {target.delivery_id}"
            ids: tuple[int, int] = (target.subscriber_id, target.list_id)
        elif source in ESP_SOURCES and target is not None and not found.foreign:
            # A provider's signed webhook: its own unsubscribe link or page, for its recipient.
            how, consent = f"provider's unsubscribe event, {found.reason}", Consent(source.value)
            ids = (target.subscriber_id, target.list_id)
        elif verdict.unsubscribe_token:
            try:
                loaded = self.signer.loads(Purpose.UNSUBSCRIBE, verdict.unsubscribe_token)
            except BadToken:
                return _unknown(verdict, "the unsubscribe token is not valid")
            if len(loaded) != 2:
                return _unknown(verdict, "the unsubscribe token is not valid")
            ids, how, target = (loaded[0], loaded[1]), "by signed unsubscribe token", None
        else:
            return _unknown(verdict, found.reason if ref is None else "not a u- address")
        try:
            changed = withdraw(
                self.session,
                subscriber_id=ids[0],
                list_id=ids[1],
                consent=consent,
                at=at,
            )
        except NotFound:
            return _unknown(verdict, f"no subscription of subscriber {ids[0]} on list {ids[1]}")
        # A token mailed before duplicates were merged names the old id (a delivery row, never).
        subscriber_id = ids[0] if target else current_subscriber_id(self.session, ids[0])
        delivery = target.delivery_id if target else self._latest_delivery(subscriber_id, ids[1])
        if changed:
            self._event(EventKind.UNSUBSCRIBE, delivery, subscriber_id, ids[1], at)
        action = f"unsubscribed list {ids[1]}" if changed else "none: already unsubscribed"
        if target is not None:
            return Decision.of(InboundKind.UNSUBSCRIBE, action, how, target)
        return Decision(InboundKind.UNSUBSCRIBE, action, how, None, subscriber_id, ids[1], delivery)

    def _latest_delivery(self, subscriber_id: int, list_id: int) -> int | None:
        """The subscriber's latest digest on the list: the edition the unsubscribe counts in
        (as the web app's one-click does)."""
        return self.session.exec(
            select(Delivery.id)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.list_id == list_id,
                Delivery.status == DeliveryStatus.SENT.value,
            )
            .order_by(Delivery.sent_at.desc(), Delivery.id.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()

    def _suppress(
        self, target: Target, reason: SuppressionReason, verdict: Verdict, note: str
    ) -> str:
        """Suppress the recipient (as `subscribers.people.suppress` does, idempotent), with
        the reply and the delivery it answered as the send path records a refusal."""
        known = self.suppressed.get(target.email_key)
        if known is not None:
            return f"none: already suppressed ({known})"
        self.suppressed[target.email_key] = reason.value
        status = clean_line(verdict.status)[:16] or None
        ids = (target.delivery_id, target.edition_id, target.list_id)
        row = (target.email, target.email_key, reason.value, note[:500], verdict.smtp_code, status)
        self.suppressions.append((*row, *ids))
        return "suppressed"

    def _event(
        self,
        kind: EventKind,
        delivery_id: int | None,
        subscriber_id: int,
        list_id: int,
        at: datetime,
    ) -> None:
        self.events.append(
            {
                "kind": kind.value,
                "delivery_id": delivery_id,
                "subscriber_id": subscriber_id,
                "list_id": list_id,
                "link_hash": None,
                "machine": False,
                "machine_reason": "",
                "user_agent": "",
                "ip": None,
                "at": at,
            }
        )

    def flush(self) -> None:
        """Write the ORM's changes, then the batch's suppressions and tracking events (a
        statement each)."""
        self.session.flush()
        self.withdrawals.flush()
        connection = self.session.connection()
        sql = DriverSql(connection)
        stamp = sql.stamp(SUPPRESSION.c.created_at, self.now)
        sql.many(_SUPPRESS, [(*row, stamp) for row in self.suppressions])
        if self.events:
            connection.execute(EVENT.insert(), self.events)


def _note(verdict: Verdict) -> str:
    """`status diagnostic`, as the send path notes a refusal."""
    parts = (clean_line(verdict.status), clean_line(verdict.diagnostic))
    return " ".join(p for p in parts if p)[:500]
