"""One person: subscribe with consent, double opt-in, withdraw, erase with cascade, suppress."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from digest.catalog.topics import add_topic
from digest.errors import InvalidInput, NotFound
from subscribers.lists import ListSpec, create_list
from subscribers.models import Subscriber, Subscription, SubscriptionTopic
from subscribers.people import (
    Consent,
    Person,
    Suppressed,
    check_topics_offered,
    describe,
    remove,
    subscribe,
    suppress,
    unsubscribe,
)


def test_double_opt_in_list_waits_for_confirmation(session: Session) -> None:
    mailing_list = create_list(session, ListSpec(slug="weekly", name="أسبوعية", double_opt_in=True))
    sub = subscribe(
        session,
        Person("a@example.org", "Asia/Riyadh"),
        mailing_list,
        consent=Consent("web", "203.0.113.9", "UA", "2"),
    )
    assert (sub.status, sub.confirmed_at, sub.ip, sub.consent_version) == (
        "unconfirmed",
        None,
        "203.0.113.9",
        "2",
    )
    again = subscribe(
        session,
        Person("a@example.org", "Asia/Riyadh"),
        mailing_list,
        consent=Consent(confirmed=True),
    )
    assert again.id == sub.id and again.status == "active" and again.confirmed_at is not None


def test_unsubscribe_keeps_record_and_remove_erases_everything(session: Session) -> None:
    topic = add_topic(session, slug="sports", name="رياضة")
    one = create_list(session, ListSpec(slug="one", name="1"))
    two = create_list(session, ListSpec(slug="two", name="2"))
    for mailing_list in (one, two):
        subscribe(
            session,
            Person("a@example.org", "Asia/Riyadh"),
            mailing_list,
            topic_ids=[topic.id or 0],
        )
    assert unsubscribe(session, "a@example.org", ["one"]) == 1
    statuses = {s["list"]: s["status"] for s in describe(session, "a@example.org")["subscriptions"]}
    assert statuses == {"one": "unsubscribed", "two": "active"}
    assert describe(session, "a@example.org")["subscriptions"][0]["withdrawn_at"] is not None
    remove(session, "a@example.org")
    session.commit()
    assert session.exec(select(Subscriber)).all() == []
    assert session.exec(select(Subscription)).all() == []
    assert session.exec(select(SubscriptionTopic)).all() == []
    with pytest.raises(NotFound):
        describe(session, "a@example.org")


def test_suppressed_address_cannot_subscribe(session: Session) -> None:
    mailing_list = create_list(session, ListSpec(slug="daily", name="يومية"))
    suppress(session, "x@Example.org", "complaint")
    suppress(session, "x@example.org", "complaint")  # idempotent
    with pytest.raises(Suppressed, match="suppressed"):
        subscribe(session, Person("x@EXAMPLE.org", "UTC"), mailing_list)
    with pytest.raises(InvalidInput):
        suppress(session, "y@example.org", "bored")


def test_topics_must_be_offered(session: Session) -> None:
    sports = add_topic(session, slug="sports", name="رياضة")
    arts = add_topic(session, slug="arts", name="فنون")
    mailing_list = create_list(
        session, ListSpec(slug="daily", name="يومية", topic_ids=[sports.id or 0])
    )
    with pytest.raises(InvalidInput, match="does not offer topic 'arts'"):
        check_topics_offered(session, mailing_list, [arts.id or 0], ["arts"])
