"""Subscriber ids: merged and erased ids are never handed to a new person (SQLite reuses)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlmodel import Session, col, select

from digest.errors import NotFound
from subscribers.consent import membership, withdraw
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList, RetiredSubscriberId, Subscriber, SubscriberAlias
from subscribers.people import Person, remove, subscribe


def _add(session: Session, email: str, mailing_list: MailingList) -> int:
    return subscribe(session, Person(email, "Asia/Riyadh"), mailing_list).subscriber_id


def _assert_link_is_dead(session: Session, old_id: int, list_id: int) -> None:
    with pytest.raises(NotFound):
        membership(session, old_id, list_id)
    with pytest.raises(NotFound):
        withdraw(session, subscriber_id=old_id, list_id=list_id)


def test_erased_newest_subscriber_id_is_not_reused(session: Session) -> None:
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    _add(session, "a@x.org", daily)
    erased = _add(session, "b@x.org", daily)
    session.commit()
    remove(session, "b@x.org")
    session.commit()
    newcomer = _add(session, "c@x.org", daily)
    session.commit()
    assert newcomer != erased
    # A link mailed to the erased person names nobody now, never the newcomer.
    _assert_link_is_dead(session, erased, daily.id or 0)
    assert membership(session, newcomer, daily.id or 0).subscription.status == "active"
    # Only the id is kept, nothing about the person.
    assert session.exec(select(RetiredSubscriberId.id)).all() == [erased]


def test_erased_kept_subscriber_retires_its_aliases_ids(session: Session) -> None:
    daily = create_list(session, ListSpec(slug="daily", name="يومية"))
    _add(session, "a@x.org", daily)
    kept = _add(session, "b@x.org", daily)
    # A duplicate merged into b the way revision 0008 does it: its row goes, its id (the
    # highest ever given) becomes an alias of b.
    alias = _add(session, "dup@x.org", daily)
    session.execute(delete(Subscriber).where(col(Subscriber.id) == alias))
    session.add(SubscriberAlias(id=alias, subscriber_id=kept, email="B@x.org"))
    session.commit()
    remove(session, "b@x.org")  # the alias row goes by cascade; its id must stay out of use
    session.commit()
    newcomers = [_add(session, f"{name}@x.org", daily) for name in "cdefgh"]
    session.commit()
    assert not {kept, alias} & set(newcomers)
    for old_id in (kept, alias):
        _assert_link_is_dead(session, old_id, daily.id or 0)
    assert sorted(session.exec(select(RetiredSubscriberId.id)).all()) == [kept, alias]
