"""Core handles of the audience's tables, in one place: bulk and batched paths (imports,
exports, selection, stats) reach these tables here."""

from __future__ import annotations

from sqlalchemy import Table

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


LIST_TOPIC = _table(ListTopic)
MAILING_LIST = _table(MailingList)
SUBSCRIBER = _table(Subscriber)
SUBSCRIPTION = _table(Subscription)
SUBSCRIPTION_TOPIC = _table(SubscriptionTopic)
SUPPRESSION = _table(Suppression)
