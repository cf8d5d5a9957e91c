"""Topics: create, find and list the subjects that subscribers choose; read them as views."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from digest.catalog.views import TopicView
from digest.db.models import Topic
from digest.db.tables import TOPIC
from digest.errors import AlreadyExists, InvalidInput, NotFound
from subscribers.validate import check_slug


def add_topic(
    session: Session,
    *,
    slug: str,
    name: str,
    name_en: str | None = None,
    keywords: Sequence[str] = (),
    aliases: Sequence[str] = (),
) -> Topic:
    check_slug(slug, "topic slug")
    if not name.strip():
        raise InvalidInput(f"topic {slug!r} needs a name (--name)")
    if session.exec(select(Topic).where(Topic.slug == slug)).first() is not None:
        raise AlreadyExists(f"topic {slug!r} already exists")
    topic = Topic(
        slug=slug,
        name=name.strip(),
        name_en=name_en,
        keywords=[k.strip() for k in keywords if k.strip()],
        aliases=[a.strip() for a in aliases if a.strip()],
    )
    session.add(topic)
    session.flush()
    return topic


def all_topics(session: Session) -> list[Topic]:
    return list(session.exec(select(Topic).order_by(Topic.slug)))


def topic_ids(session: Session) -> dict[str, int]:
    """slug -> id for every topic."""
    return {t.slug: t.id for t in all_topics(session) if t.id is not None}


def topic_views(connection: Connection) -> dict[int, TopicView]:
    """Every topic as a digest shows it: id -> view (selection, sending and preview alike)."""
    rows = connection.execute(sa_select(TOPIC.c.id, TOPIC.c.slug, TOPIC.c.name, TOPIC.c.name_en))
    return {tid: TopicView(slug, name, name_en) for tid, slug, name, name_en in rows}


def get_topics(session: Session, slugs: Sequence[str]) -> list[Topic]:
    """The topics named, in the order given; an unknown slug is an error naming it."""
    found = {t.slug: t for t in session.exec(select(Topic).where(Topic.slug.in_(slugs)))}  # type: ignore[attr-defined]
    missing = [s for s in slugs if s not in found]
    if missing:
        raise NotFound(f"unknown topic {', '.join(map(repr, missing))}: see `digest topics list`")
    return [found[s] for s in slugs]


def topic_as_dict(topic: Topic) -> dict[str, object]:
    return {
        "slug": topic.slug,
        "name": topic.name,
        "name_en": topic.name_en,
        "keywords": topic.keywords,
        "aliases": topic.aliases,
    }
