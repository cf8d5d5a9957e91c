"""One person at a time: add to a list, describe, withdraw consent, erase, suppress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.errors import InvalidInput, NotFound
from digest.text.controls import clean_line
from subscribers import aliases
from subscribers.history import record
from subscribers.models import (
    TOPIC,
    ConsentAction,
    ListTopic,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    SubscriptionTopic,
    Suppression,
    SuppressionReason,
)
from subscribers.validate import (
    check_hour,
    check_locale,
    check_timezone,
    email_key,
    normalize_address,
    normalize_email,
)

NAME_LENGTH = 200  # the column's length: a longer name is cut, not refused by PostgreSQL


class Suppressed(InvalidInput):
    """The address is on the suppression list and must not be subscribed again."""


@dataclass(frozen=True)
class Person:
    """Who subscribes and how they read (stored on the subscriber)."""

    email: str
    timezone: str
    name: str = ""  # empty: keep the name already known
    locale: str = "ar"
    # The relay takes SMTPUTF8 mail (setting): a non-ASCII local part may be accepted.
    smtputf8: bool = False


@dataclass(frozen=True)
class Consent:
    """Where a subscription request came from (stored on the subscription)."""

    source: str = "cli"
    ip: str | None = None
    user_agent: str | None = None
    version: str = "1"
    # Already confirmed (an editor adding someone who agreed elsewhere): no double opt-in.
    confirmed: bool = False


def clean_name(raw: str) -> str:
    """A name from outside (CSV, CLI, form) as stored: one line, no controls, bounded."""
    return " ".join(clean_line(raw).split())[:NAME_LENGTH].strip()


def lookup_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber of `email` in any case or IDN spelling; None when there is none.

    Every lookup of a person by address goes through here (or `find_subscriber`): the
    address is matched by its key, never by `Subscriber.email`."""
    key = email_key(email)
    if "\x00" in key:  # no address holds one (and PostgreSQL refuses it in a query)
        return None
    return session.exec(select(Subscriber).where(Subscriber.email_key == key)).first()


def find_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber of `email` (any case or IDN spelling); NotFound otherwise."""
    normalized = normalize_email(email, smtputf8=True)  # whatever was accepted is found
    found = lookup_subscriber(session, normalized)
    if found is None:
        raise NotFound(f"no subscriber {normalized!r}")
    return found


def current_subscriber_id(session: Session, subscriber_id: int) -> int:
    """The id a link's subscriber id stands for now (a live subscriber's own id wins over a
    merged duplicate's alias)."""
    return aliases.current_subscriber_id(session.connection(), subscriber_id)


def find_subscription(
    session: Session, email: str, mailing_list: MailingList
) -> tuple[Subscriber, Subscription]:
    """The subscriber of `email` and their subscription to the list; NotFound otherwise."""
    subscriber = find_subscriber(session, email)
    subscription = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.list_id == mailing_list.id,
        )
    ).first()
    if subscription is None:
        raise NotFound(f"{subscriber.email} is not subscribed to list {mailing_list.slug!r}")
    return subscriber, subscription


def is_suppressed(session: Session, email: str) -> bool:
    """Whether `email`, in any case or IDN spelling, is suppressed."""
    key = email_key(email)
    if "\x00" in key:  # no address holds one (and PostgreSQL refuses it in a query)
        return False
    found = session.exec(select(Suppression.id).where(Suppression.email_key == key)).first()
    return found is not None


def check_topics_offered(
    session: Session, mailing_list: MailingList, topic_ids: Sequence[int], names: Sequence[str]
) -> None:
    """Refuse topics the list does not offer (a list offering none offers every topic)."""
    offered = set(
        session.exec(select(ListTopic.topic_id).where(ListTopic.list_id == mailing_list.id))
    )
    if not offered:
        return
    refused = [name for name, tid in zip(names, topic_ids, strict=True) if tid not in offered]
    if refused:
        raise InvalidInput(
            f"list {mailing_list.slug!r} does not offer topic {', '.join(map(repr, refused))}"
        )


def subscribe(
    session: Session,
    person: Person,
    mailing_list: MailingList,
    *,
    topic_ids: Sequence[int] = (),
    hour: int | None = None,
    consent: Consent = Consent(),
) -> Subscription:
    """Add (or update) a person on a list.

    The subscription is active when the consent is `confirmed` or when the list has no double
    opt-in; otherwise it waits unconfirmed for the confirmation link. A withdrawn subscription
    is re-opened only through this explicit call (imports never re-open one).
    """
    normalized, key = normalize_address(person.email, smtputf8=person.smtputf8)
    check_timezone(person.timezone)
    check_locale(person.locale)
    if hour is not None:
        check_hour(hour)
    if is_suppressed(session, key):
        raise Suppressed(f"{normalized} is suppressed (bounced, complained or blocked)")
    subscriber = _save_subscriber(session, normalized, key, person)
    subscription = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.list_id == mailing_list.id
        )
    ).first()
    active = consent.confirmed or not mailing_list.double_opt_in
    now = utcnow()
    added = False
    if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        subscription = subscription or Subscription(
            subscriber_id=subscriber.id or 0, list_id=mailing_list.id or 0
        )
        _open(subscription, consent, active=active, now=now)
        added = active
    elif active and subscription.status == SubscriptionStatus.UNCONFIRMED:
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.confirmed_at = now
        added = True
    subscription.send_hour = hour
    session.add(subscription)
    session.flush()
    set_topics(session, subscription.id or 0, topic_ids)
    if added:  # a request waiting for its link is recorded by the confirmation path
        record(session, subscription.id or 0, ConsentAction.ADDED, consent, now)
    return subscription


def _save_subscriber(session: Session, email: str, key: str, person: Person) -> Subscriber:
    """The subscriber of `key`, created with `email` as written when new (a known person
    keeps the spelling they were first added with)."""
    subscriber = session.exec(select(Subscriber).where(Subscriber.email_key == key)).first()
    if subscriber is None:  # never an id merged away: links mailed to it still circulate
        free = aliases.next_free_subscriber_id(session.connection())
        subscriber = Subscriber(id=free, email=email, email_key=key)
    subscriber.name = clean_name(person.name) or subscriber.name
    subscriber.timezone = person.timezone
    subscriber.locale = person.locale
    session.add(subscriber)
    session.flush()
    return subscriber


def _open(subscription: Subscription, consent: Consent, *, active: bool, now: datetime) -> None:
    """A new (or withdrawn) subscription starts again, with this request's consent record."""
    subscription.status = SubscriptionStatus.ACTIVE if active else SubscriptionStatus.UNCONFIRMED
    subscription.requested_at = now
    subscription.confirmed_at = now if active else None
    subscription.withdrawn_at = None
    subscription.source = consent.source
    subscription.ip = consent.ip
    subscription.user_agent = consent.user_agent
    subscription.consent_version = consent.version


def set_topics(session: Session, subscription_id: int, topic_ids: Sequence[int]) -> None:
    session.execute(
        delete(SubscriptionTopic).where(col(SubscriptionTopic.subscription_id) == subscription_id)
    )
    for position, topic_id in enumerate(dict.fromkeys(topic_ids)):
        session.add(
            SubscriptionTopic(subscription_id=subscription_id, topic_id=topic_id, position=position)
        )
    session.flush()


def unsubscribe(session: Session, email: str, list_slugs: Sequence[str] | None = None) -> int:
    """Withdraw consent on the given lists (all when None); the record stays. Returns count."""
    subscriber = find_subscriber(session, email)
    query = select(Subscription).where(
        Subscription.subscriber_id == subscriber.id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if list_slugs is not None:
        list_ids = list(
            session.exec(select(MailingList.id).where(col(MailingList.slug).in_(list_slugs)))
        )
        if len(list_ids) != len(set(list_slugs)):
            raise NotFound(f"unknown list among {', '.join(list_slugs)}")
        query = query.where(col(Subscription.list_id).in_(list_ids))
    changed = 0
    now = utcnow()
    for subscription in session.exec(query).all():
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
        subscription.withdrawn_at = now
        session.add(subscription)
        record(session, subscription.id or 0, ConsentAction.WITHDRAWN, Consent(), now)
        changed += 1
    session.flush()
    return changed


def remove(session: Session, email: str) -> Subscriber:
    """Erase a person and everything stored about them (GDPR art. 17); cascades in SQL."""
    subscriber = find_subscriber(session, email)
    # Links mailed to this id (or its aliases) still circulate: SQLite must not reuse them.
    aliases.retire_subscriber_ids(session.connection(), subscriber.id or 0)
    session.execute(delete(Subscriber).where(col(Subscriber.id) == subscriber.id))
    session.flush()
    return subscriber


def suppress(
    session: Session, email: str, reason: str = SuppressionReason.MANUAL, note: str = ""
) -> Suppression:
    """Never mail this address again, on any list (idempotent)."""
    normalized, key = normalize_address(email, smtputf8=True)  # any address may be blocked
    if reason not in {r.value for r in SuppressionReason}:
        known = ", ".join(r.value for r in SuppressionReason)
        raise InvalidInput(f"suppression reason {reason!r} is not one of {known}")
    found = session.exec(select(Suppression).where(Suppression.email_key == key)).first()
    if found is None:
        found = Suppression(email=normalized, email_key=key, reason=reason, note=clean_line(note))
        session.add(found)
        session.flush()
    return found


def describe(session: Session, email: str) -> dict[str, Any]:
    """Everything stored about one person, for `subscribers show` and access requests."""
    subscriber = find_subscriber(session, email)
    rows = session.exec(
        select(Subscription, MailingList)
        .where(Subscription.subscriber_id == subscriber.id)
        .where(Subscription.list_id == MailingList.id)
        .order_by(col(MailingList.slug))
    ).all()
    subscriptions = []
    for subscription, mailing_list in rows:
        slugs = list(
            session.execute(
                select(TOPIC.c.slug)
                .join(SubscriptionTopic, col(SubscriptionTopic.topic_id) == TOPIC.c.id)
                .where(SubscriptionTopic.subscription_id == subscription.id)
                .order_by(col(SubscriptionTopic.position))
            ).scalars()
        )
        subscriptions.append(
            {
                "list": mailing_list.slug,
                "status": subscription.status,
                "topics": slugs,
                "hour": subscription.send_hour,
                "requested_at": _iso(subscription.requested_at),
                "confirmed_at": _iso(subscription.confirmed_at),
                "withdrawn_at": _iso(subscription.withdrawn_at),
                "source": subscription.source,
                "ip": subscription.ip,
                "user_agent": subscription.user_agent,
                "consent_version": subscription.consent_version,
            }
        )
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "locale": subscriber.locale,
        "timezone": subscriber.timezone,
        "created_at": _iso(subscriber.created_at),
        "suppressed": is_suppressed(session, subscriber.email),
        "subscriptions": subscriptions,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
