"""Consent by link: public subscription requests, confirmation (double opt-in), re-subscribing.

Everything here is reached through a signed link or a public form, so nothing in it lets a
stranger change what an existing subscriber chose: a request for an address that is
already on the list changes nothing, and only the person holding the emailed link confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.errors import InvalidInput, NotFound
from subscribers.models import (
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    SubscriptionTopic,
)
from subscribers.people import (
    Consent,
    Person,
    Suppressed,
    is_suppressed,
    subscribe,
    unsubscribe,
)
from subscribers.validate import normalize_email


class Confirmed(StrEnum):
    CONFIRMED = "confirmed"  # this call activated the subscription
    ALREADY = "already"  # it was active before


@dataclass(frozen=True)
class Membership:
    """A subscriber on a list, as a signed link names them."""

    subscriber: Subscriber
    mailing_list: MailingList
    subscription: Subscription


def membership(session: Session, subscriber_id: int, list_id: int) -> Membership:
    """The subscription a link names; NotFound when the person or the list is gone."""
    row = session.exec(
        select(Subscriber, MailingList, Subscription)
        .where(Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id)
        .where(Subscriber.id == Subscription.subscriber_id)
        .where(MailingList.id == Subscription.list_id)
    ).first()
    if row is None:
        raise NotFound(f"no subscription of subscriber {subscriber_id} on list {list_id}")
    return Membership(*row)


def confirm(
    session: Session,
    *,
    subscriber_id: int,
    list_id: int,
    consent: Consent,
    now: datetime | None = None,
) -> Confirmed:
    """Activate an unconfirmed subscription and record the consent (time, IP, agent, version).

    A withdrawn subscription is not re-opened by an old confirmation link, and a suppressed
    address is never activated: both raise NotFound, like an unknown subscriber.
    """
    found = membership(session, subscriber_id, list_id)
    subscription = found.subscription
    if is_suppressed(session, found.subscriber.email):
        raise NotFound(f"subscriber {subscriber_id} is suppressed")
    if subscription.status == SubscriptionStatus.ACTIVE:
        return Confirmed.ALREADY
    if subscription.status != SubscriptionStatus.UNCONFIRMED:
        raise NotFound(f"subscription of subscriber {subscriber_id} was withdrawn")
    _record(subscription, consent, now or utcnow())
    session.add(subscription)
    session.flush()
    return Confirmed.CONFIRMED


def resubscribe(
    session: Session,
    *,
    subscriber_id: int,
    list_id: int,
    consent: Consent,
    now: datetime | None = None,
) -> Subscription:
    """Give consent again from the preferences page (its link was mailed to the person)."""
    found = membership(session, subscriber_id, list_id)
    if is_suppressed(session, found.subscriber.email):
        raise Suppressed(f"{found.subscriber.email} is suppressed")
    subscription = found.subscription
    if subscription.status != SubscriptionStatus.ACTIVE:
        _record(subscription, consent, now or utcnow())
        subscription.requested_at = subscription.confirmed_at or utcnow()
        session.add(subscription)
        session.flush()
    return subscription


def _record(subscription: Subscription, consent: Consent, now: datetime) -> None:
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.confirmed_at = now
    subscription.withdrawn_at = None
    subscription.ip = consent.ip
    subscription.user_agent = (consent.user_agent or "")[:512] or None
    subscription.consent_version = consent.version
    if consent.source:
        subscription.source = consent.source


@dataclass(frozen=True)
class Request:
    """The outcome of a public subscription request."""

    subscription: Subscription
    send_confirmation: bool  # False: the address is already on the list, nothing to send


def request_subscription(
    session: Session, person: Person, mailing_list: MailingList, *, consent: Consent
) -> Request:
    """A public form asks to subscribe `email`: an unconfirmed subscription and a link to mail.

    Only lists with double opt-in take public requests. For an address we already know,
    nothing the form says (name, language, zone) overwrites what the person chose.
    Raises Suppressed for a suppressed address (the caller answers as for any other).
    """
    if not mailing_list.double_opt_in:
        raise InvalidInput(f"list {mailing_list.slug!r} does not take public subscriptions")
    normalized = normalize_email(person.email)
    if is_suppressed(session, normalized):
        raise Suppressed(f"{normalized} is suppressed")
    subscriber = session.exec(select(Subscriber).where(Subscriber.email == normalized)).first()
    if subscriber is not None:
        existing = session.exec(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.list_id == mailing_list.id,
            )
        ).first()
        if existing is not None and existing.status == SubscriptionStatus.ACTIVE:
            return Request(existing, send_confirmation=False)
        if existing is not None and existing.status == SubscriptionStatus.UNCONFIRMED:
            return Request(existing, send_confirmation=True)
        topic_ids = _chosen(session, existing)
        known = Person(normalized, subscriber.timezone, locale=subscriber.locale)
        subscription = subscribe(
            session,
            known,
            mailing_list,
            topic_ids=topic_ids,
            hour=existing.send_hour if existing is not None else None,
            consent=consent,
        )
        return Request(subscription, send_confirmation=True)
    subscription = subscribe(session, person, mailing_list, consent=consent)
    return Request(subscription, send_confirmation=True)


def _chosen(session: Session, subscription: Subscription | None) -> list[int]:
    if subscription is None:
        return []
    return list(
        session.exec(
            select(SubscriptionTopic.topic_id)
            .where(SubscriptionTopic.subscription_id == subscription.id)
            .order_by(col(SubscriptionTopic.position))
        )
    )


def withdraw(
    session: Session, *, subscriber_id: int, list_id: int, every_list: bool = False
) -> list[int]:
    """Unsubscribe from the list a link names (or from every list); returns the list ids changed.

    Idempotent: a second call changes nothing and returns []. The consent record stays.
    """
    found = membership(session, subscriber_id, list_id)
    query = (
        select(MailingList.id, MailingList.slug)
        .join(Subscription, col(Subscription.list_id) == MailingList.id)
        .where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
        )
    )
    if not every_list:
        query = query.where(Subscription.list_id == list_id)
    changed = list(session.exec(query))
    if changed:
        unsubscribe(session, found.subscriber.email, [slug for _id, slug in changed])
    return [lid for lid, _slug in changed if lid is not None]
