"""Withdrawals in bulk (subscribers/withdrawals.py): the same outcome as `consent.withdraw`
on every list, once per subscription however often a batch names the person, and nothing
for a subscription withdrawn meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from subscribers.consent import withdraw
from subscribers.history import history
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList, Subscription
from subscribers.people import Consent, Person, subscribe
from subscribers.withdrawals import Withdrawals

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _people(session: Session, daily: MailingList, count: int) -> tuple[MailingList, list[int]]:
    weekly = create_list(session, ListSpec(slug="weekly", name="Weekly"))
    ids = []
    for n in range(count):
        person = Person(f"p{n}@example.org", "Asia/Riyadh")
        row = subscribe(session, person, daily, consent=Consent(confirmed=True))
        subscribe(session, person, weekly, consent=Consent(confirmed=True))
        ids.append(row.subscriber_id)
    session.commit()
    return weekly, ids


def _subscriptions(session: Session, subscriber_id: int) -> list[Subscription]:
    session.expire_all()
    query = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    return list(session.exec(query.order_by(Subscription.list_id)))


def test_every_open_list_is_withdrawn_with_one_step_each_however_often_named(
    session: Session, daily: MailingList
) -> None:
    weekly, (first, second, untouched) = _people(session, daily, 3)
    withdrawals = Withdrawals(session.connection(), Consent("complaint"))
    withdrawals.prepare([first, second, first])
    assert withdrawals.withdraw_all(first, T0) == [daily.id, weekly.id]
    assert withdrawals.withdraw_all(first, T0 + timedelta(minutes=1)) == []  # named twice
    later = T0 + timedelta(hours=2)
    assert withdrawals.withdraw_all(second, later) == [daily.id, weekly.id]
    withdrawals.flush()
    session.commit()
    for person, at in ((first, T0), (second, later)):
        for subscription in _subscriptions(session, person):
            assert subscription.status == "unsubscribed"
            assert subscription.withdrawn_at is not None
            assert subscription.withdrawn_at.replace(tzinfo=UTC) == at
            (step,) = [s for s in history(session, subscription.id or 0) if s.action == "withdrawn"]
            assert (step.source, step.consent_version) == ("complaint", "1")
            assert step.at.replace(tzinfo=UTC) == at
    assert {s.status for s in _subscriptions(session, untouched)} == {"active"}


def test_a_person_not_prepared_is_read_when_named_and_one_without_lists_changes_nothing(
    session: Session, daily: MailingList
) -> None:
    _, (person, _, _) = _people(session, daily, 3)
    withdrawals = Withdrawals(session.connection(), Consent("complaint"))
    assert withdrawals.withdraw_all(person, T0) == [daily.id, daily.id + 1]
    assert withdrawals.withdraw_all(987654, T0) == []
    withdrawals.flush()
    withdrawals.flush()  # nothing pending: no second step
    session.commit()
    steps = [s for sub in _subscriptions(session, person) for s in history(session, sub.id or 0)]
    assert [s.action for s in steps].count("withdrawn") == 2


def test_a_subscription_withdrawn_meanwhile_gets_no_second_step_nor_a_new_date(
    session: Session, daily: MailingList
) -> None:
    weekly, (person, _, _) = _people(session, daily, 3)
    withdrawals = Withdrawals(session.connection(), Consent("complaint"))
    withdrawals.prepare([person])  # both lists open at this point
    web = T0 - timedelta(minutes=5)
    assert withdraw(session, subscriber_id=person, list_id=daily.id or 0, at=web) == [daily.id]
    assert withdrawals.withdraw_all(person, T0) == [daily.id, weekly.id]
    withdrawals.flush()
    session.commit()
    by_list = {s.list_id: s for s in _subscriptions(session, person)}
    kept = by_list[daily.id]
    assert kept.withdrawn_at is not None and kept.withdrawn_at.replace(tzinfo=UTC) == web
    (step,) = [s for s in history(session, kept.id or 0) if s.action == "withdrawn"]
    assert step.source == "web"
    (step,) = [s for s in history(session, by_list[weekly.id].id or 0) if s.action == "withdrawn"]
    assert step.source == "complaint"
