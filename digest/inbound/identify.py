"""Which delivery an inbound verdict is about: its VERP token, else the Message-ID of the
returned message, else (providers' events, or mail without a bounce domain) the latest
digest sent to the address; and whether the verdict's addresses include that delivery's
own recipient (nobody else may be affected)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, select

from digest.config import Settings
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY
from digest.inbound.verdicts import Received, Source, Verdict
from subscribers.tables import SUBSCRIBER
from subscribers.validate import email_key

ESP_SOURCES = frozenset({Source.SES, Source.POSTMARK, Source.SENDGRID, Source.MAILGUN})
_CHUNK = 500
_COLUMNS = (
    DELIVERY.c.id,
    DELIVERY.c.subscriber_id,
    DELIVERY.c.list_id,
    DELIVERY.c.edition_id,
    DELIVERY.c.status,
    DELIVERY.c.sent_at,
    DELIVERY.c.message_id,
    SUBSCRIBER.c.email,
    SUBSCRIBER.c.email_key,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery and its recipient, as the policy needs them."""

    delivery_id: int
    subscriber_id: int
    list_id: int
    edition_id: int
    status: str
    sent_at: datetime | None
    email: str
    email_key: str


@dataclass(frozen=True, slots=True)
class Found:
    """The delivery a verdict is about (None: none), and how it was found or why not.
    `foreign`: a delivery was found but the verdict names other addresses than its recipient."""

    target: Target | None
    reason: str
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class IdentifyOptions:
    """`mail_by_address`: mail may be traced by its address alone (no bounce domain, so no
    VERP envelope); `window`: how far back that address lookup goes."""

    mail_by_address: bool
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentifyOptions:
        inbound = settings.inbound
        return cls(not inbound.domain, timedelta(days=inbound.soft_bounce_days))


def message_id_forms(message_id: str) -> tuple[str, str]:
    """`<id>` (as the send path stores it) and the bare `id`."""
    bare = message_id.strip().strip("<>").strip()
    return f"<{bare}>", bare


def _query() -> Select[Any]:
    return select(*_COLUMNS).join(SUBSCRIBER, SUBSCRIBER.c.id == DELIVERY.c.subscriber_id)


def _target(row: Any) -> Target:
    return Target(
        delivery_id=row.id,
        subscriber_id=row.subscriber_id,
        list_id=row.list_id,
        edition_id=row.edition_id,
        status=row.status,
        sent_at=row.sent_at,
        email=row.email,
        email_key=row.email_key or email_key(row.email),
    )


def _rows(connection: Connection, column: Any, values: Iterable[Any], *extra: Any) -> list[Any]:
    wanted = sorted(set(values))
    rows: list[Any] = []
    for start in range(0, len(wanted), _CHUNK):
        query = _query().where(column.in_(wanted[start : start + _CHUNK]), *extra)
        rows.extend(connection.execute(query))
    return rows


def _usable_key(address: str) -> str | None:
    key = email_key(address) if address else ""
    # A NUL is in no address (and PostgreSQL refuses it in a query); bound the key.
    return key if key and "\x00" not in key and len(key) <= 320 else None


class Lookup:
    """The deliveries one batch may be about, read with a few queries for the whole batch."""

    def __init__(
        self,
        connection: Connection,
        items: Sequence[tuple[Received, Verdict]],
        options: IdentifyOptions,
        now: datetime,
    ) -> None:
        self.options = options
        verdicts = [verdict for _, verdict in items]
        ids = {v.verp.delivery_id for v in verdicts if v.verp is not None}
        self.by_id = {row.id: _target(row) for row in _rows(connection, DELIVERY.c.id, ids)}
        forms = {
            form
            for v in verdicts
            if v.original_message_id and "\x00" not in v.original_message_id
            for form in message_id_forms(v.original_message_id)
            if len(form) <= 255
        }
        self.by_message_id = {
            row.message_id: _target(row) for row in _rows(connection, DELIVERY.c.message_id, forms)
        }
        keys = {
            key
            for received, verdict in items
            if self._by_address(received) and (key := _usable_key(verdict.address)) is not None
        }
        since = now - options.window
        latest: dict[str, Target] = {}
        sent = (DELIVERY.c.status == DeliveryStatus.SENT.value, DELIVERY.c.sent_at >= since)
        for row in _rows(connection, SUBSCRIBER.c.email_key, keys, *sent):
            target = _target(row)
            best = latest.get(target.email_key)
            if best is None or _later(target, best):
                latest[target.email_key] = target
        self.by_address = latest

    def _by_address(self, received: Received) -> bool:
        return received.source in ESP_SOURCES or self.options.mail_by_address

    def find(self, received: Received, verdict: Verdict) -> Found:
        """The delivery of one verdict (see the module docstring for the order)."""
        tried: list[str] = []
        if verdict.verp is not None:
            target = self.by_id.get(verdict.verp.delivery_id)
            if target is not None:
                return _check(verdict, target, f"VERP {verdict.verp.kind.value}- token")
            tried.append(f"VERP token names delivery {verdict.verp.delivery_id}, now gone")
        if verdict.original_message_id:
            forms = message_id_forms(verdict.original_message_id)
            target = self.by_message_id.get(forms[0]) or self.by_message_id.get(forms[1])
            if target is not None:
                return _check(verdict, target, "Message-ID of the returned message")
            tried.append("Message-ID is none of ours")
        if self._by_address(received) and verdict.address:
            key = _usable_key(verdict.address)
            target = self.by_address.get(key) if key is not None else None
            if target is not None:
                return _check(verdict, target, "latest digest sent to the address")
            days = f"{self.options.window.total_seconds() / 86400:g}"
            tried.append(f"no digest sent to the address in {days} days")
        elif not tried:
            tried.append("no VERP token, Message-ID or address to trace")
        return Found(None, "no delivery identified: " + "; ".join(tried))


def _later(one: Target, other: Target) -> bool:
    return (one.sent_at, one.delivery_id) > (other.sent_at, other.delivery_id)


def _check(verdict: Verdict, target: Target, how: str) -> Found:
    """Only the delivery's own recipient may be affected: when the verdict names addresses,
    the recipient's key must be among theirs."""
    named = [a for a in (verdict.address, *verdict.also) if a]
    if named and target.email_key not in {email_key(a) for a in named}:
        return Found(
            target,
            f"names {named[0][:80]!r}, not the recipient of delivery {target.delivery_id}",
            foreign=True,
        )
    return Found(target, f"by {how}")
