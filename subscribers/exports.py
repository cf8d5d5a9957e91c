"""CSV export of a list's subscribers, in the format `subscribers import` reads back."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import TextIO

from sqlalchemy import Engine, select

from subscribers.csv_cells import write_row
from subscribers.imports import COLUMNS
from subscribers.models import TOPIC, MailingList, SubscriptionStatus
from subscribers.tables import SUBSCRIBER, SUBSCRIPTION, SUBSCRIPTION_TOPIC

DEFAULT_STATUSES = (SubscriptionStatus.ACTIVE,)


def export_rows(
    engine: Engine, mailing_list: MailingList, statuses: Sequence[str] = DEFAULT_STATUSES
) -> Iterator[list[str]]:
    """One CSV row per subscription of the list with one of `statuses`, ordered by email."""
    with engine.connect() as connection:
        topics: dict[int, list[str]] = {}
        for subscription_id, slug in connection.execute(
            select(SUBSCRIPTION_TOPIC.c.subscription_id, TOPIC.c.slug)
            .join(TOPIC, TOPIC.c.id == SUBSCRIPTION_TOPIC.c.topic_id)
            .join(SUBSCRIPTION, SUBSCRIPTION.c.id == SUBSCRIPTION_TOPIC.c.subscription_id)
            .where(SUBSCRIPTION.c.list_id == mailing_list.id)
            .order_by(SUBSCRIPTION_TOPIC.c.subscription_id, SUBSCRIPTION_TOPIC.c.position)
        ):
            topics.setdefault(subscription_id, []).append(slug)
        result = connection.execution_options(yield_per=5000).execute(
            select(
                SUBSCRIPTION.c.id,
                SUBSCRIBER.c.email,
                SUBSCRIBER.c.name,
                SUBSCRIBER.c.timezone,
                SUBSCRIPTION.c.send_hour,
                SUBSCRIBER.c.locale,
            )
            .join(SUBSCRIBER, SUBSCRIBER.c.id == SUBSCRIPTION.c.subscriber_id)
            .where(
                SUBSCRIPTION.c.list_id == mailing_list.id,
                SUBSCRIPTION.c.status.in_(list(statuses)),
            )
            .order_by(SUBSCRIBER.c.email)
        )
        for sid, email, name, timezone, hour, locale in result:
            yield [
                email,
                name,
                "|".join(topics.get(sid, [])),
                timezone,
                "" if hour is None else str(hour),
                locale,
            ]


def write_csv(
    out: TextIO,
    engine: Engine,
    mailing_list: MailingList,
    statuses: Sequence[str] = DEFAULT_STATUSES,
) -> int:
    """Write the export to `out`; cells a spreadsheet would run as formulas (a name starting
    with `=`) get a leading `'`, which `subscribers import` removes again. Returns rows."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in export_rows(engine, mailing_list, statuses):
        write_row(writer, row)
        count += 1
    return count
