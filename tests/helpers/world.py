"""Builders for dispatch tests: a list with topics, subscribers in several zones, articles."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from digest.catalog.topics import add_topic
from digest.db.models import Article, ArticleTopic, Topic
from subscribers.lists import ListSpec, create_list
from subscribers.models import MailingList
from subscribers.people import Consent, Person, subscribe


@dataclass
class World:
    daily: MailingList
    topics: dict[str, Topic]

    def topic_id(self, slug: str) -> int:
        return self.topics[slug].id or 0


def make_world(session: Session, *, hour: int = 7, cadence: str = "daily") -> World:
    topics = {
        "politics": add_topic(session, slug="politics", name="سياسة", name_en="Politics"),
        "economy": add_topic(session, slug="economy", name="اقتصاد", name_en="Economy"),
        "sports": add_topic(session, slug="sports", name="رياضة", name_en="Sports"),
    }
    daily = create_list(
        session,
        ListSpec(
            slug="daily",
            name="النشرة اليومية",
            hour=hour,
            cadence=cadence,
            topic_ids=[t.id or 0 for t in topics.values()],
        ),
    )
    session.commit()
    return World(daily, topics)


def add_reader(
    session: Session,
    world: World,
    email: str,
    topics: list[str],
    *,
    timezone: str = "Asia/Riyadh",
    hour: int | None = None,
    locale: str = "ar",
    name: str = "",
) -> None:
    subscribe(
        session,
        # smtputf8: the world may hold any stored address (input rules: tests/subscribers).
        Person(email, timezone, name=name, locale=locale, smtputf8=True),
        world.daily,
        topic_ids=[world.topic_id(t) for t in topics],
        hour=hour,
        consent=Consent(confirmed=True),
    )
    session.commit()


def add_article(
    session: Session,
    world: World,
    title: str,
    topics: list[str],
    ingested_at: datetime,
    *,
    published_at: datetime | None = None,
) -> int:
    slug = title.replace(" ", "-")
    article = Article(
        guid=f"urn:test:{slug}:{ingested_at.isoformat()}",
        url=f"https://news.example.org/{hashlib.blake2s(slug.encode(), digest_size=6).hexdigest()}",
        title=title,
        summary=f"ملخص {title}",
        body_html=f"<p>{title}</p>",
        image_url="https://news.example.org/img.jpg",
        published_at=published_at or ingested_at,
        ingested_at=ingested_at,
    )
    session.add(article)
    session.flush()
    for slug_ in topics:
        session.add(
            ArticleTopic(article_id=article.id or 0, topic_id=world.topic_id(slug_), reason="feed")
        )
    session.commit()
    return article.id or 0
