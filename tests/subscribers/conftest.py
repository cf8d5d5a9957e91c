"""Fixtures of the audience's tests: a list offering two of three topics, the topic map."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from digest.catalog.topics import add_topic
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList


@pytest.fixture
def daily(session: Session) -> MailingList:
    politics = add_topic(session, slug="politics", name="سياسة")
    economy = add_topic(session, slug="economy", name="اقتصاد")
    add_topic(session, slug="cooking", name="طبخ")
    mailing_list = create_list(
        session, ListSpec(slug="daily", name="يومية", topic_ids=[politics.id or 0, economy.id or 0])
    )
    session.commit()
    return mailing_list


@pytest.fixture
def topics(session: Session) -> dict[str, int]:
    from digest.catalog.topics import all_topics

    known = {t.slug: t.id or 0 for t in all_topics(session)}
    known.update({t.name: t.id or 0 for t in all_topics(session)})
    return known
