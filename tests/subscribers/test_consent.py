"""Consent by link: a stranger's request changes no stored subscription, links expire and
end when a newer one is issued, and the history keeps every step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from digest.errors import NotFound
from subscribers.consent import (
    Confirmed,
    confirm,
    issue_confirmation,
    mark_sent,
    request_subscription,
    withdraw,
)
from subscribers.history import history
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList
from subscribers.people import Consent, Person, find_subscription, suppress

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
OWNER = Consent("web", "198.51.100.7", "Owner/1.0", "1")
STRANGER = Consent("web", "203.0.113.66", "Stranger/6.6", "1")


@pytest.fixture
def weekly(session: Session) -> MailingList:
    created = create_list(session, ListSpec(slug="weekly", name="Weekly", double_opt_in=True))
    session.commit()
    return created


def _ask(session: Session, weekly: MailingList, consent: Consent, now: datetime) -> int:
    """A public request for mona@example.org; the nonce of the link it would mail."""
    person = Person("mona@example.org", "UTC", name="Mona")
    asked = request_subscription(session, person, weekly, consent=consent, now=now)
    assert asked.send_confirmation
    return issue_confirmation(session, asked.subscriber_id, asked.list_id, source="web", now=now)


def _confirm(session: Session, weekly: MailingList, nonce: int, now: datetime) -> Confirmed:
    subscriber, _ = find_subscription(session, "mona@example.org", weekly)
    return confirm(
        session,
        subscriber_id=subscriber.id or 0,
        list_id=weekly.id or 0,
        nonce=nonce,
        consent=OWNER,
        max_age=WEEK,
        now=now,
    )


def test_a_stranger_cannot_reset_a_withdrawn_subscription_and_old_links_stay_dead(
    session: Session, weekly: MailingList
) -> None:
    first = _ask(session, weekly, OWNER, T0)
    assert _confirm(session, weekly, first, T0 + timedelta(hours=1)) == Confirmed.CONFIRMED
    subscriber, subscription = find_subscription(session, "mona@example.org", weekly)
    ids = {"subscriber_id": subscriber.id or 0, "list_id": weekly.id or 0}
    assert withdraw(session, **ids, consent=OWNER, at=T0 + timedelta(days=30)) == [weekly.id]
    before = subscription.model_dump()

    later = T0 + timedelta(days=90)
    _ask(session, weekly, STRANGER, later)  # a stranger asks for the withdrawn address
    session.refresh(subscription)
    assert subscription.model_dump() == before  # nothing stored changed: status, IP, agent
    with pytest.raises(NotFound):  # the months-old link does not re-open it
        _confirm(session, weekly, first, later)

    expired = _ask(session, weekly, STRANGER, later)
    with pytest.raises(NotFound):  # a link older than the setting's days does not either
        _confirm(session, weekly, expired, later + WEEK)
    replaced = _ask(session, weekly, STRANGER, later + WEEK)
    newest = _ask(session, weekly, STRANGER, later + WEEK)
    with pytest.raises(NotFound):  # a newer request ends the older link
        _confirm(session, weekly, replaced, later + WEEK)
    session.refresh(subscription)
    assert subscription.status == "unsubscribed"

    assert _confirm(session, weekly, newest, later + WEEK) == Confirmed.CONFIRMED
    session.refresh(subscription)
    assert (subscription.status, subscription.ip) == ("active", OWNER.ip)
    withdraw(session, **ids, consent=OWNER, at=later + WEEK)
    with pytest.raises(NotFound):  # a used link is spent
        _confirm(session, weekly, newest, later + WEEK)

    steps = [(e.action, e.ip) for e in history(session, subscription.id or 0)]
    assert steps == [
        ("requested", OWNER.ip),
        ("confirmed", OWNER.ip),
        ("withdrawn", OWNER.ip),
        ("requested", STRANGER.ip),
        ("requested", STRANGER.ip),
        ("requested", STRANGER.ip),
        ("requested", STRANGER.ip),
        ("resubscribed", OWNER.ip),
        ("withdrawn", OWNER.ip),
    ]


def test_one_confirmation_per_address_per_cooldown_whatever_the_ip(
    session: Session, weekly: MailingList
) -> None:
    hour = timedelta(hours=1)
    person = Person("Sam@Example.org", "UTC")
    first = request_subscription(session, person, weekly, consent=OWNER, cooldown=hour, now=T0)
    assert first.send_confirmation
    issue_confirmation(session, first.subscriber_id, first.list_id, source="web", now=T0)
    mark_sent(session, first.subscriber_id, first.list_id, T0)
    soon = T0 + timedelta(minutes=59)
    again = request_subscription(session, person, weekly, consent=STRANGER, cooldown=hour, now=soon)
    assert (again.send_confirmation, again.reason) == (False, "cooldown")
    later = request_subscription(
        session, person, weekly, consent=STRANGER, cooldown=hour, now=T0 + hour
    )
    assert later.send_confirmation


def test_active_and_suppressed_addresses_are_mailed_nothing(
    session: Session, weekly: MailingList
) -> None:
    nonce = _ask(session, weekly, OWNER, T0)
    _confirm(session, weekly, nonce, T0)
    active = request_subscription(
        session, Person("mona@example.org", "UTC"), weekly, consent=STRANGER, now=T0
    )
    assert (active.send_confirmation, active.reason) == (False, "active")
    suppress(session, "gone@example.org")
    gone = request_subscription(
        session, Person("gone@example.org", "UTC"), weekly, consent=STRANGER, now=T0
    )
    assert (gone.send_confirmation, gone.reason) == (False, "suppressed")
