"""Core handles of every table, in one place: a stage reaches a table here, never through
another stage's module."""

from __future__ import annotations

from sqlalchemy import Table

from digest.db.models import Article, ArticleTopic, Delivery, Edition, Event, Link, Topic
from subscribers.models import (
    ListTopic,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionTopic,
    Suppression,
)


def _table(model: type) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


ARTICLE = _table(Article)
ARTICLE_TOPIC = _table(ArticleTopic)
DELIVERY = _table(Delivery)
EDITION = _table(Edition)
EVENT = _table(Event)
LINK = _table(Link)
TOPIC = _table(Topic)
LIST_TOPIC = _table(ListTopic)
MAILING_LIST = _table(MailingList)
SUBSCRIBER = _table(Subscriber)
SUBSCRIPTION = _table(Subscription)
SUBSCRIPTION_TOPIC = _table(SubscriptionTopic)
SUPPRESSION = _table(Suppression)
