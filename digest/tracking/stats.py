"""Per-edition figures: delivery outcomes, human and machine opens, clicks, unsubscribes, and
what came back by mail: hard and soft bounces, complaints, mailto unsubscribes.

Rates are over delivered messages (deliveries `sent`: accepted by the receiving server),
the figure the bounce brake judges too (digest/inbound/brake.py). Every count is unique per
delivery (a person who opens five times is one open); machine opens (privacy proxies,
scanners) are counted apart and broken down by reason, never mixed into human opens.
Delay warnings, auto-replies and unknown messages are stored (`digest bounces list`) but
never counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, distinct, func, select, union

from digest.db.models import DeliveryStatus, EventKind, InboundKind
from digest.db.tables import DELIVERY, EDITION, EVENT, INBOUND_EVENT, LINK
from digest.errors import NotFound
from subscribers.tables import MAILING_LIST

_ATTEMPTED = (
    DeliveryStatus.SENT.value,
    DeliveryStatus.FAILED_TEMPORARY.value,
    DeliveryStatus.FAILED_PERMANENT.value,
)
# Events with the delivery they belong to (and so its edition).
_EVENTS = EVENT.join(DELIVERY, DELIVERY.c.id == EVENT.c.delivery_id)
# Inbound events counted per edition (delays, auto-replies and unknowns are not).
_RETURNS = (InboundKind.HARD_BOUNCE.value, InboundKind.SOFT_BOUNCE.value)
# Mailto unsubscribes: mail to the u- address, however it came in (the providers' webhook
# unsubscribes are their own links, counted with the web ones), that took someone off a list
# (the policy writes "none: already unsubscribed" for the others).
_MAIL_SOURCES = ("smtp", "file", "stdin", "imap")  # digest.inbound.verdicts.Source (a later layer)
_UNSUBSCRIBED_SOMEONE = ~func.coalesce(INBOUND_EVENT.c.action, "").startswith("none")


@dataclass
class LinkClicks:
    url: str
    clicks: int  # deliveries whose reader followed it


@dataclass
class EditionStats:
    edition_id: int
    list_slug: str
    date: date
    sent: int = 0  # handed to SMTP (accepted or not)
    delivered: int = 0  # accepted by the receiving server
    temporary_failures: int = 0  # still being retried, or given up after the deadline
    permanent_failures: int = 0
    human_opens: int = 0  # deliveries opened by a person
    machine_opens: int = 0  # deliveries whose pixel a proxy or scanner fetched
    machine_reasons: dict[str, int] = field(default_factory=dict)  # reason -> fetches
    clicks: int = 0  # deliveries with a person's click
    machine_clicks: int = 0
    top_links: list[LinkClicks] = field(default_factory=list)
    unsubscribes: int = 0  # by link, form or mail
    complaints: int = 0  # a feedback loop's report (ARF or an ESP's), or a web complaint
    hard_bounces: int = 0  # deliveries a bounce said can never arrive
    soft_bounces: int = 0  # deliveries a bounce said did not arrive this time
    mailto_unsubscribes: int = 0  # of `unsubscribes`: by mail to the List-Unsubscribe mailto

    def rate(self, count: int) -> float | None:
        return round(count / self.delivered, 4) if self.delivered else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {
            "open": self.rate(self.human_opens),
            "click": self.rate(self.clicks),
            "unsubscribe": self.rate(self.unsubscribes),
            "complaint": self.rate(self.complaints),
            "hard_bounce": self.rate(self.hard_bounces),
            "soft_bounce": self.rate(self.soft_bounces),
            "mailto_unsubscribe": self.rate(self.mailto_unsubscribes),
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["date"] = self.date.isoformat()
        data["rates"] = self.rates
        return data


def edition_stats(
    engine: Engine,
    *,
    list_slug: str | None = None,
    edition_id: int | None = None,
    top_links: int = 5,
) -> list[EditionStats]:
    """Figures of every edition (of one list, or one edition), newest first."""
    with engine.connect() as connection:
        editions = _editions(connection, list_slug, edition_id)
        if not editions:
            return []
        ids = list(editions)
        _count_deliveries(connection, editions, ids)
        _count_events(connection, editions, ids)
        _count_returns(connection, editions, ids)
        _count_machine_reasons(connection, editions, ids)
        _find_top_links(connection, editions, ids, top_links)
    return list(editions.values())


def _editions(
    connection: Connection, list_slug: str | None, edition_id: int | None
) -> dict[int, EditionStats]:
    """Empty figures of the editions asked for, newest first; NotFound for an unknown list or
    edition."""
    query = (
        select(EDITION.c.id, MAILING_LIST.c.slug, EDITION.c.local_date)
        .join(MAILING_LIST, MAILING_LIST.c.id == EDITION.c.list_id)
        .order_by(EDITION.c.local_date.desc(), EDITION.c.id.desc())
    )
    if list_slug is not None:
        query = query.where(MAILING_LIST.c.slug == list_slug)
    if edition_id is not None:
        query = query.where(EDITION.c.id == edition_id)
    editions = {eid: EditionStats(eid, slug, day) for eid, slug, day in connection.execute(query)}
    if editions:
        return editions
    if (
        list_slug is not None
        and connection.execute(
            select(MAILING_LIST.c.id).where(MAILING_LIST.c.slug == list_slug)
        ).first()
        is None
    ):
        raise NotFound(f"unknown list {list_slug!r}: see `digest lists list`")
    if edition_id is not None:
        raise NotFound(f"no edition {edition_id}" + (f" of {list_slug!r}" if list_slug else ""))
    return editions


def _count_deliveries(
    connection: Connection, editions: Mapping[int, EditionStats], ids: list[int]
) -> None:
    for eid, status, count in connection.execute(
        select(DELIVERY.c.edition_id, DELIVERY.c.status, func.count())
        .where(DELIVERY.c.edition_id.in_(ids))
        .group_by(DELIVERY.c.edition_id, DELIVERY.c.status)
    ):
        stats = editions[eid]
        if status in _ATTEMPTED:
            stats.sent += count
        if status == DeliveryStatus.SENT:
            stats.delivered += count
        elif status == DeliveryStatus.FAILED_TEMPORARY:
            stats.temporary_failures += count
        elif status == DeliveryStatus.FAILED_PERMANENT:
            stats.permanent_failures += count


def _count_events(
    connection: Connection, editions: Mapping[int, EditionStats], ids: list[int]
) -> None:
    """Opens, clicks, unsubscribes and complaints: unique per delivery."""
    for eid, kind, machine, count in connection.execute(
        select(
            DELIVERY.c.edition_id,
            EVENT.c.kind,
            EVENT.c.machine,
            func.count(distinct(EVENT.c.delivery_id)),
        )
        .select_from(_EVENTS)
        .where(DELIVERY.c.edition_id.in_(ids))
        .group_by(DELIVERY.c.edition_id, EVENT.c.kind, EVENT.c.machine)
    ):
        _count(editions[eid], kind, bool(machine), count)


def _count_returns(
    connection: Connection, editions: Mapping[int, EditionStats], ids: list[int]
) -> None:
    """Bounces, complaints and mailto unsubscribes, unique per delivery.

    A complaint or an unsubscribe may be both an inbound event and a tracking event (a web
    complaint, the one-click record of a mailto unsubscribe): the union counts it once."""
    inbound = (
        select(
            INBOUND_EVENT.c.edition_id,
            INBOUND_EVENT.c.kind,
            func.count(distinct(INBOUND_EVENT.c.delivery_id)),
        )
        .where(
            INBOUND_EVENT.c.edition_id.in_(ids),
            INBOUND_EVENT.c.delivery_id.is_not(None),
            INBOUND_EVENT.c.kind.in_(_RETURNS),
        )
        .group_by(INBOUND_EVENT.c.edition_id, INBOUND_EVENT.c.kind)
    )
    for eid, kind, count in connection.execute(inbound):
        stats = editions[eid]
        if kind == InboundKind.HARD_BOUNCE:
            stats.hard_bounces = count
        elif kind == InboundKind.SOFT_BOUNCE:
            stats.soft_bounces = count
    for eid, count in connection.execute(
        select(INBOUND_EVENT.c.edition_id, func.count(distinct(INBOUND_EVENT.c.delivery_id)))
        .where(
            INBOUND_EVENT.c.edition_id.in_(ids),
            INBOUND_EVENT.c.delivery_id.is_not(None),
            INBOUND_EVENT.c.kind == InboundKind.UNSUBSCRIBE.value,
            INBOUND_EVENT.c.source.in_(_MAIL_SOURCES),  # a provider's webhook is not mailto
            _UNSUBSCRIBED_SOMEONE,
        )
        .group_by(INBOUND_EVENT.c.edition_id)
    ):
        editions[eid].mailto_unsubscribes = count
    for kind in (EventKind.COMPLAINT, EventKind.UNSUBSCRIBE):
        for eid, count in _either(connection, ids, kind):
            if kind == EventKind.COMPLAINT:
                editions[eid].complaints = count
            else:
                editions[eid].unsubscribes = count


def _either(connection: Connection, ids: list[int], kind: EventKind) -> list[tuple[int, int]]:
    """(edition, deliveries) with a `kind` tracking event or inbound event, per edition."""
    both = union(
        select(DELIVERY.c.edition_id.label("edition_id"), EVENT.c.delivery_id.label("delivery"))
        .select_from(_EVENTS)
        .where(DELIVERY.c.edition_id.in_(ids), EVENT.c.kind == kind.value),
        select(
            INBOUND_EVENT.c.edition_id.label("edition_id"),
            INBOUND_EVENT.c.delivery_id.label("delivery"),
        ).where(
            INBOUND_EVENT.c.edition_id.in_(ids),
            INBOUND_EVENT.c.delivery_id.is_not(None),
            INBOUND_EVENT.c.kind == kind.value,  # the kinds share their names
        ),
    ).subquery()
    query = select(both.c.edition_id, func.count()).group_by(both.c.edition_id)
    return [(eid, count) for eid, count in connection.execute(query)]


def _count_machine_reasons(
    connection: Connection, editions: Mapping[int, EditionStats], ids: list[int]
) -> None:
    for eid, reason, count in connection.execute(
        select(DELIVERY.c.edition_id, EVENT.c.machine_reason, func.count())
        .select_from(_EVENTS)
        .where(
            DELIVERY.c.edition_id.in_(ids),
            EVENT.c.kind == EventKind.OPEN.value,
            EVENT.c.machine.is_(True),
        )
        .group_by(DELIVERY.c.edition_id, EVENT.c.machine_reason)
    ):
        editions[eid].machine_reasons[reason or "unknown"] = count


def _find_top_links(
    connection: Connection, editions: Mapping[int, EditionStats], ids: list[int], top_links: int
) -> None:
    """The `top_links` links most followed by people, per edition."""
    links: dict[int, list[LinkClicks]] = defaultdict(list)
    clicks = func.count(distinct(EVENT.c.delivery_id))
    for eid, url, count in connection.execute(
        select(DELIVERY.c.edition_id, LINK.c.url, clicks)
        .select_from(_EVENTS.join(LINK, LINK.c.hash == EVENT.c.link_hash))
        .where(
            DELIVERY.c.edition_id.in_(ids),
            EVENT.c.kind == EventKind.CLICK.value,
            EVENT.c.machine.is_(False),
        )
        .group_by(DELIVERY.c.edition_id, LINK.c.url)
        .order_by(DELIVERY.c.edition_id, clicks.desc(), LINK.c.url)
    ):
        if len(links[eid]) < top_links:
            links[eid].append(LinkClicks(url, count))
    for eid, found in links.items():
        editions[eid].top_links = found


def _count(stats: EditionStats, kind: str, machine: bool, count: int) -> None:
    if kind == EventKind.OPEN:
        if machine:
            stats.machine_opens = count
        else:
            stats.human_opens = count
    elif kind == EventKind.CLICK:
        if machine:
            stats.machine_clicks = count
        else:
            stats.clicks = count
