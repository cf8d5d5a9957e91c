"""Core handles of the audience's tables, in one place: bulk and batched paths (imports,
exports, selection, stats) reach these tables here."""

from __future__ import annotations

from digest.db.tables import table_of
from subscribers.models import (
    ListTopic,
    MailingList,
    RetiredSubscriberId,
    Subscriber,
    SubscriberAlias,
    Subscription,
    SubscriptionTopic,
    Suppression,
)

ALIAS = table_of(SubscriberAlias)
LIST_TOPIC = table_of(ListTopic)
MAILING_LIST = table_of(MailingList)
RETIRED = table_of(RetiredSubscriberId)
SUBSCRIBER = table_of(Subscriber)
SUBSCRIPTION = table_of(Subscription)
SUBSCRIPTION_TOPIC = table_of(SubscriptionTopic)
SUPPRESSION = table_of(Suppression)
