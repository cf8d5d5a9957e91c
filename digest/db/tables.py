"""Core handles of the engine's tables, in one place: a stage reaches a table here, never
through another stage's module (the audience's tables: `subscribers.tables`)."""

from __future__ import annotations

from sqlalchemy import Table

from digest.db.models import Article, ArticleTopic, Delivery, Edition, Event, Link, Topic


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
