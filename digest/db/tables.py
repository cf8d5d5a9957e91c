"""Core handles of the engine's tables, in one place: a stage reaches a table here, never
through another stage's module (the audience's tables: `subscribers.tables`)."""

from __future__ import annotations

from sqlalchemy import Table

from digest.db.models import (
    Article,
    ArticleTopic,
    Delivery,
    Edition,
    Event,
    InboundEvent,
    InboundMessage,
    Link,
    Topic,
)


def table_of(model: type) -> Table:
    """The Core table of a SQLModel table class (SQLModel does not type `__table__`)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


ARTICLE = table_of(Article)
ARTICLE_TOPIC = table_of(ArticleTopic)
DELIVERY = table_of(Delivery)
EDITION = table_of(Edition)
EVENT = table_of(Event)
INBOUND_EVENT = table_of(InboundEvent)
INBOUND_MESSAGE = table_of(InboundMessage)
LINK = table_of(Link)
TOPIC = table_of(Topic)
