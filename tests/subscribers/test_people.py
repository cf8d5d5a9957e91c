"""One person: subscribe with consent, double opt-in, withdraw, erase with cascade, suppress."""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from digest.catalog.topics import add_topic
from digest.errors import InvalidInput, NotFound
from subscribers.lists import ListSpec, create_list
from subscribers.models import (
    MailingList,
    Subscriber,
    SubscriberAlias,
    Subscription,
    SubscriptionTopic,
)
from subscribers.people import (
    Consent,
    Person,
    Suppressed,
    check_topics_offered,
    current_subscriber_id,
    describe,
    find_subscriber,
    is_suppressed,
    lookup_subscriber,
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


# Item 4: addresses differing only in case are one person.


def test_case_variants_are_one_subscriber_kept_as_first_written(session: Session) -> None:
    # Scenario: Reem@, REEM@ and reem@ each made a subscriber: three digests to one mailbox.
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    for spelling in ("Reem@Example.org", "REEM@example.ORG", "reem@example.org"):
        subscribe(session, Person(spelling, "Asia/Riyadh"), daily)
    people = session.exec(select(Subscriber)).all()
    assert [p.email for p in people] == ["Reem@Example.org".replace("Example", "example")]
    assert people[0].email_key == "reem@example.org"
    assert len(session.exec(select(Subscription)).all()) == 1
    # Every lookup by address matches any spelling.
    assert find_subscriber(session, "rEEm@EXAMPLE.org").id == people[0].id
    assert lookup_subscriber(session, "nobody@example.org") is None
    assert describe(session, "REEM@example.org")["email"] == "Reem@example.org"
    assert unsubscribe(session, "reem@EXAMPLE.ORG") == 1
    assert remove(session, "REEM@EXAMPLE.ORG").id == people[0].id


def test_suppression_matches_every_spelling(session: Session) -> None:
    # Scenario: `A@x` suppressed, `a@x` subscribed anyway and was mailed.
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    subscribe(session, Person("Omar@example.org", "Asia/Riyadh"), daily)
    suppress(session, "OMAR@EXAMPLE.ORG", "complaint")
    assert suppress(session, "omar@example.org").reason == "complaint"  # idempotent by key
    assert is_suppressed(session, "omar@example.org")
    assert is_suppressed(session, "Omar@Example.Org")
    with pytest.raises(Suppressed):
        subscribe(session, Person("oMAR@example.org", "Asia/Riyadh"), daily)
    # Selection leaves the person out whatever the spelling suppressed.
    from digest.selection.queries import active

    session.flush()
    assert list(active(session.connection(), daily.id or 0)) == []


def test_idn_spellings_are_one_subscriber_and_one_suppression(session: Session) -> None:
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    subscribe(session, Person("user@bücher.de", "Asia/Riyadh"), daily)
    subscribe(session, Person("USER@xn--bcher-kva.de", "Asia/Riyadh"), daily)
    assert [s.email for s in session.exec(select(Subscriber))] == ["user@bücher.de"]
    suppress(session, "user@XN--BCHER-KVA.de")
    assert is_suppressed(session, "User@Bücher.de")


def test_names_lose_controls_and_bidi_overrides(session: Session) -> None:
    # Item 16: `subscribers add --name` stores no NUL, controls or bidi overrides.
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    name = "Claim\x00 your\u202e gnp.exe\x1b[2J\nprize " + "x" * 300
    subscribe(session, Person("n@example.org", "Asia/Riyadh", name=name), daily)
    stored = session.exec(select(Subscriber)).one().name
    assert stored.startswith("Claim your gnp.exe[2J prize x")
    assert len(stored) == 200 and not any(c in stored for c in "\x00\u202e\x1b\n")


def test_merged_subscriber_id_leads_to_the_kept_one(session: Session) -> None:
    # A link mailed before a merge (migration 0008) carries the old id.
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    kept = subscribe(session, Person("a@example.org", "Asia/Riyadh"), daily).subscriber_id
    session.add(SubscriberAlias(id=kept + 100, subscriber_id=kept, email="A@example.org"))
    session.flush()
    assert current_subscriber_id(session, kept + 100) == kept
    assert current_subscriber_id(session, kept) == kept
    # The old id's unsubscribe link still unsubscribes the person.
    from subscribers.consent import membership, withdraw

    assert membership(session, kept + 100, daily.id or 0).subscriber.id == kept
    assert withdraw(session, subscriber_id=kept + 100, list_id=daily.id or 0) == [daily.id]
    assert describe(session, "a@example.org")["subscriptions"][0]["status"] == "unsubscribed"


ADDRESSES = st.sampled_from(["reem@example.org", "user@bücher.de", "x.y+z@mail.example.co"])


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(address=ADDRESSES, seed=st.randoms(use_true_random=False))
def test_random_case_variants_through_subscribe_and_suppress(
    session: Session, address: str, seed: Random
) -> None:
    def variant() -> str:
        return "".join(c.upper() if seed.random() < 0.5 else c for c in address)

    daily = session.exec(select(MailingList).where(MailingList.slug == "p")).first()
    daily = daily or create_list(session, ListSpec(slug="p", name="p"))
    try:
        for _ in range(3):
            subscribe(session, Person(variant(), "Asia/Riyadh"), daily)
        assert len(session.exec(select(Subscriber)).all()) == 1
        suppress(session, variant())
        assert is_suppressed(session, variant())
        with pytest.raises(Suppressed):
            subscribe(session, Person(variant(), "Asia/Riyadh"), daily)
    finally:
        session.rollback()


_HOSTILE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from("\x00\x1b\x85\u202e\u2066@.Aa"),
    max_size=30,
)


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_HOSTILE)
def test_hostile_text_through_every_person_path(session: Session, text: str) -> None:
    # Item 16 and 19: any text from the CLI or a form is a clear error or is stored clean;
    # never a database error (PostgreSQL refuses NUL) and never stored with controls.
    from subscribers.lists import get_list

    try:
        for probe in (text, f"{text}@example.org", f"a@{text}.org"):
            assert lookup_subscriber(session, probe) is None
            assert not is_suppressed(session, probe)
            with pytest.raises((InvalidInput, NotFound)):
                find_subscriber(session, probe)
        with pytest.raises(NotFound):
            get_list(session, text)
        mailing_list = create_list(session, ListSpec(slug="h", name=f"n{text}", description=text))
        subscribe(session, Person("h@example.org", "Asia/Riyadh", name=text), mailing_list)
        session.flush()
        stored = [session.exec(select(Subscriber.name)).one(), mailing_list.name]
        assert not any(set(value) & set("\x00\x1b\x85\u202e\u2066\n") for value in stored)
    finally:
        session.rollback()
