"""Consent by link: public subscription requests, confirmation (double opt-in), withdrawing.

Everything here is reached through a signed link or a public form, so nothing in it lets a
stranger change what an existing subscriber chose: a request only appends a step to the
history and issues a new confirmation nonce; the subscription changes when the person
holding the newest, unexpired link confirms it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.errors import InvalidInput, NotFound
from subscribers.history import record
from subscribers.models import (
    ConsentAction,
    MailingList,
    PendingConfirmation,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from subscribers.people import (
    Consent,
    Person,
    Suppressed,
    current_subscriber_id,
    find_subscriber,
    is_suppressed,
    subscribe,
)

NONCE_LIMIT = 2**31 - 1  # a token's numbers are row-id sized; signed, so no need to be secret


class Confirmed(StrEnum):
    CONFIRMED = "confirmed"  # this call activated the subscription (or re-opened it)
    ALREADY = "already"  # it was active before


@dataclass(frozen=True)
class Membership:
    """A subscriber on a list, as a signed link names them."""

    subscriber: Subscriber
    mailing_list: MailingList
    subscription: Subscription


def membership(session: Session, subscriber_id: int, list_id: int) -> Membership:
    """The subscription a link names; NotFound when the person or the list is gone."""
    # A link mailed before duplicates were merged (migration 0008) names the old id.
    subscriber_id = current_subscriber_id(session, subscriber_id)
    row = session.exec(
        select(Subscriber, MailingList, Subscription)
        .where(Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id)
        .where(Subscriber.id == Subscription.subscriber_id)
        .where(MailingList.id == Subscription.list_id)
    ).first()
    if row is None:
        raise NotFound(f"no subscription of subscriber {subscriber_id} on list {list_id}")
    return Membership(*row)


def issue_confirmation(
    session: Session, subscriber_id: int, list_id: int, *, source: str, now: datetime
) -> int:
    """A fresh nonce for the subscription's confirmation link: every older link stops working."""
    pending = _pending(session, subscriber_id, list_id)
    if pending is None:
        pending = PendingConfirmation(subscriber_id=subscriber_id, list_id=list_id, nonce=0)
    old = pending.nonce
    while pending.nonce == old:  # a new request must end the old link
        pending.nonce = secrets.randbelow(NONCE_LIMIT) + 1
    pending.requested_at = now
    pending.source = source[:32]
    session.add(pending)
    session.flush()
    return pending.nonce


def mark_sent(session: Session, subscriber_id: int, list_id: int, now: datetime) -> None:
    """The confirmation went out (the per-address cooldown counts from here)."""
    pending = _pending(session, subscriber_id, list_id)
    if pending is not None:
        pending.sent_at = now
        session.add(pending)
        session.flush()


def last_sent(session: Session, subscriber_id: int) -> datetime | None:
    """When this address was last mailed a confirmation, on any list."""
    return session.exec(
        select(func.max(PendingConfirmation.sent_at)).where(
            PendingConfirmation.subscriber_id == subscriber_id
        )
    ).one()


def _pending(session: Session, subscriber_id: int, list_id: int) -> PendingConfirmation | None:
    return session.exec(
        select(PendingConfirmation).where(
            PendingConfirmation.subscriber_id == subscriber_id,
            PendingConfirmation.list_id == list_id,
        )
    ).first()


def confirmable(
    session: Session,
    subscriber_id: int,
    list_id: int,
    nonce: int,
    *,
    max_age: timedelta,
    now: datetime,
) -> bool:
    """Whether `nonce` is the subscription's newest link and has not expired."""
    pending = _pending(session, subscriber_id, list_id)
    return pending is not None and pending.nonce == nonce and pending.requested_at + max_age > now


def confirm(
    session: Session,
    *,
    subscriber_id: int,
    list_id: int,
    nonce: int,
    consent: Consent,
    max_age: timedelta,
    now: datetime | None = None,
) -> Confirmed:
    """Activate (or re-open) a subscription with the consent of the link's holder.

    Only the newest link of the subscription confirms, and only within `max_age` of its
    request; a suppressed address is never activated. Anything else raises NotFound, like
    an unknown subscriber. The step is appended to the history.
    """
    now = now or utcnow()
    found = membership(session, subscriber_id, list_id)
    subscription = found.subscription
    if is_suppressed(session, found.subscriber.email):
        raise NotFound(f"subscriber {subscriber_id} is suppressed")
    if subscription.status == SubscriptionStatus.ACTIVE:
        return Confirmed.ALREADY
    if not confirmable(session, subscriber_id, list_id, nonce, max_age=max_age, now=now):
        raise NotFound(f"confirmation link of subscriber {subscriber_id} expired or was replaced")
    pending = _pending(session, subscriber_id, list_id)
    assert pending is not None  # confirmable
    reopened = subscription.status == SubscriptionStatus.UNSUBSCRIBED
    given = Consent(pending.source, consent.ip, consent.user_agent, consent.version)
    _record(subscription, given, now)
    if reopened:
        subscription.requested_at = pending.requested_at
    session.add(subscription)
    session.delete(pending)
    action = ConsentAction.RESUBSCRIBED if reopened else ConsentAction.CONFIRMED
    record(session, subscription.id or 0, action, given, now)
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
        now = now or utcnow()
        _record(subscription, consent, now)
        subscription.requested_at = now
        session.add(subscription)
        record(session, subscription.id or 0, ConsentAction.RESUBSCRIBED, consent, now)
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
    """What a public subscription request comes to once the queue's worker looks at it."""

    subscriber_id: int
    list_id: int
    send_confirmation: bool  # False: nothing to mail (see `reason`)
    reason: str = ""


def request_subscription(
    session: Session,
    person: Person,
    mailing_list: MailingList,
    *,
    consent: Consent,
    cooldown: timedelta = timedelta(0),
    now: datetime | None = None,
) -> Request:
    """Someone asks (on a public form) to subscribe `person.email`: whether to mail a link.

    Only lists with double opt-in take public requests. An address we do not know gets an
    unconfirmed subscription; for one we know, nothing the form says (name, language,
    zone) is stored, and an existing subscription, withdrawn or not, is left as it is: the
    request is only a step of its history until the link is used. An active or suppressed
    address, or one mailed a confirmation less than `cooldown` ago, is mailed nothing.
    """
    if not mailing_list.double_opt_in:
        raise InvalidInput(f"list {mailing_list.slug!r} does not take public subscriptions")
    now = now or utcnow()
    list_id = mailing_list.id or 0
    if is_suppressed(session, person.email):
        return Request(0, list_id, send_confirmation=False, reason="suppressed")
    try:
        subscriber: Subscriber | None = find_subscriber(session, person.email)
    except NotFound:
        subscriber = None
    if subscriber is None:
        subscription = subscribe(session, person, mailing_list, consent=consent)
    else:
        sent = last_sent(session, subscriber.id or 0)
        if sent is not None and sent + cooldown > now:
            return Request(subscriber.id or 0, list_id, send_confirmation=False, reason="cooldown")
        existing = session.exec(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id, Subscription.list_id == list_id
            )
        ).first()
        if existing is not None and existing.status == SubscriptionStatus.ACTIVE:
            return Request(subscriber.id or 0, list_id, send_confirmation=False, reason="active")
        subscription = existing or _unconfirmed(session, subscriber, mailing_list, consent)
    record(session, subscription.id or 0, ConsentAction.REQUESTED, consent, now)
    return Request(subscription.subscriber_id, list_id, send_confirmation=True)


def _unconfirmed(
    session: Session, subscriber: Subscriber, mailing_list: MailingList, consent: Consent
) -> Subscription:
    """A known person's new subscription to another list, waiting for its confirmation."""
    known = Person(subscriber.email, subscriber.timezone, locale=subscriber.locale, smtputf8=True)
    return subscribe(session, known, mailing_list, consent=consent)


def withdraw(
    session: Session,
    *,
    subscriber_id: int,
    list_id: int,
    every_list: bool = False,
    consent: Consent | None = None,
    at: datetime | None = None,
) -> list[int]:
    """Unsubscribe from the list a link names (or from every list); returns the list ids changed.

    Idempotent: a second call changes nothing and returns []. The consent record stays, and
    each change is a step of the history (with who asked: `consent`, when: `at`).
    """
    subscriber_id = membership(session, subscriber_id, list_id).subscriber.id or subscriber_id
    query = select(Subscription).where(
        Subscription.subscriber_id == subscriber_id,
        Subscription.status != SubscriptionStatus.UNSUBSCRIBED,
    )
    if not every_list:
        query = query.where(Subscription.list_id == list_id)
    at = at or utcnow()
    changed = []
    for subscription in session.exec(query.order_by(col(Subscription.list_id))).all():
        subscription.status = SubscriptionStatus.UNSUBSCRIBED
        subscription.withdrawn_at = at
        session.add(subscription)
        asked = consent or Consent("web")
        record(session, subscription.id or 0, ConsentAction.WITHDRAWN, asked, at)
        changed.append(subscription.list_id)
    session.flush()
    return changed
