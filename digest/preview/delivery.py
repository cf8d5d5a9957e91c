"""What a delivery's digest is made of, loaded back from the outbox, and rendered again.

`digest send` compiles a segment from the selection; "view in browser" (`GET /v/{token}`)
rebuilds the same segment from the delivery row (its topic ids, article ids, language and
edition date) and personalises it with that delivery's own tokens, so the page is the
message as it was sent. The dispatcher builds the segments it sends with these same
functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, func, select

from digest.clock import utcnow
from digest.db.bulk import DriverSql
from digest.db.models import DeliveryStatus
from digest.db.tables import (
    ARTICLE,
    ARTICLE_TOPIC,
    DELIVERY,
    EDITION,
    MAILING_LIST,
    SUBSCRIBER,
    TOPIC,
)
from digest.editions.controls import EditionControls
from digest.editions.workflow import load_controls
from digest.errors import NotFound
from digest.render.compiled import CompiledDigest
from digest.render.data import ArticleView, Segment, TopicView
from digest.render.renderer import Recipient, RenderedMessage, Renderer
from digest.tracking.tokens import RecipientTokens, Signer, tokens_for


@dataclass(frozen=True)
class DeliveredDigest:
    """One delivery's digest: who got it and the segment it was compiled from."""

    delivery_id: int
    subscriber_id: int
    list_id: int
    name: str
    segment: Segment


def load_topics(connection: Connection) -> dict[int, TopicView]:
    """Every topic: id -> view."""
    rows = connection.execute(select(TOPIC.c.id, TOPIC.c.slug, TOPIC.c.name, TOPIC.c.name_en))
    return {tid: TopicView(slug, name, name_en) for tid, slug, name, name_en in rows}


def load_articles(
    connection: Connection, ids: Iterable[int], topics: Mapping[int, TopicView]
) -> dict[int, ArticleView]:
    """Articles by id, with their topic slugs (in topic id order), as the dispatcher shows them."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    tags: dict[int, list[str]] = {}
    for aid, tid in connection.execute(
        select(ARTICLE_TOPIC.c.article_id, ARTICLE_TOPIC.c.topic_id)
        .where(ARTICLE_TOPIC.c.article_id.in_(wanted))
        .order_by(ARTICLE_TOPIC.c.article_id, ARTICLE_TOPIC.c.topic_id)
    ):
        if tid in topics:
            tags.setdefault(aid, []).append(topics[tid].slug)
    articles: dict[int, ArticleView] = {}
    for aid, title, url, summary, image, published, body_chars in connection.execute(
        select(
            ARTICLE.c.id,
            ARTICLE.c.title,
            ARTICLE.c.url,
            ARTICLE.c.summary,
            ARTICLE.c.image_url,
            ARTICLE.c.published_at,
            func.length(ARTICLE.c.body_html),
        ).where(ARTICLE.c.id.in_(wanted))
    ):
        articles[aid] = ArticleView(
            id=aid,
            title=title,
            url=url,
            summary=summary or "",
            image_url=image,
            published_at=published,
            topics=tuple(tags.get(aid, ())),
            body_chars=body_chars or 0,
        )
    return articles


def segment_for(
    *,
    topic_ids: Iterable[int],
    article_ids: Iterable[int],
    day: date,
    locale: str,
    mailing_list: tuple[str, str],
    topics: Mapping[int, TopicView],
    articles: Mapping[int, ArticleView],
    tracking: bool = True,
    controls: EditionControls | None = None,
) -> Segment:
    """The segment of stored ids: articles in their stored (ranked) order, topics in theirs,
    with the edition's lead (pinned articles), note and subject.

    Articles deleted since, or no longer tagged with any of the topics, are left out.
    """
    order = tuple(topics[t] for t in topic_ids if t in topics)
    slugs = {t.slug for t in order}
    ids = list(article_ids)
    leading = set(ids[: controls.lead_count(ids)]) if controls else set()
    chosen = tuple(
        articles[a]
        for a in ids
        if a in articles and (a in leading or slugs.intersection(articles[a].topics))
    )
    list_name, cadence = mailing_list
    return Segment(
        articles=chosen,
        topics=order,
        date=day,
        list_name=list_name,
        locale=locale,
        cadence=cadence,
        tracking=tracking,
        lead=sum(1 for a in chosen if a.id in leading),
        note=controls.note if controls else "",
        subject=controls.subject_for(locale) if controls else None,
    )


def load_delivery(engine: Engine, delivery_id: int) -> DeliveredDigest:
    """The digest a delivery held; NotFound for an unknown, skipped or emptied delivery."""
    with engine.connect() as connection:
        row = connection.execute(
            select(
                DELIVERY.c.subscriber_id,
                DELIVERY.c.edition_id,
                DELIVERY.c.list_id,
                DELIVERY.c.status,
                DELIVERY.c.locale,
                DELIVERY.c.topic_ids,
                DELIVERY.c.article_ids,
                EDITION.c.local_date,
                MAILING_LIST.c.name.label("list_name"),
                MAILING_LIST.c.cadence,
                SUBSCRIBER.c.name.label("subscriber_name"),
            )
            .join(EDITION, EDITION.c.id == DELIVERY.c.edition_id)
            .join(MAILING_LIST, MAILING_LIST.c.id == DELIVERY.c.list_id)
            .join(SUBSCRIBER, SUBSCRIBER.c.id == DELIVERY.c.subscriber_id)
            .where(DELIVERY.c.id == delivery_id)
        ).first()
        if row is None or row.status == DeliveryStatus.SKIPPED or not row.article_ids:
            raise NotFound(f"delivery {delivery_id} has no digest to show")
        topics = load_topics(connection)
        articles = load_articles(connection, row.article_ids, topics)
        controls = load_controls(connection, row.edition_id)
    segment = segment_for(
        topic_ids=row.topic_ids,
        article_ids=row.article_ids,
        day=row.local_date,
        locale=row.locale,
        mailing_list=(row.list_name, row.cadence),
        topics=topics,
        articles=articles,
        controls=controls,
    )
    if not segment.articles or not segment.topics:
        raise NotFound(f"the articles of delivery {delivery_id} are gone")
    return DeliveredDigest(
        delivery_id, row.subscriber_id, row.list_id, row.subscriber_name or "", segment
    )


def recipient(name: str, tokens: RecipientTokens) -> Recipient:
    """The per-subscriber parts of a digest: name and that delivery's signed tokens."""
    return Recipient(
        name=name,
        view_token=tokens.view,
        unsubscribe_token=tokens.unsubscribe,
        preferences_token=tokens.preferences,
        open_token=tokens.open,
        click_token=tokens.click,
    )


def store_links(engine: Engine, links: Mapping[str, str], now: datetime | None = None) -> None:
    """Record the click destinations of a compiled digest (suffix `.hash` -> URL)."""
    if not links:
        return
    with engine.begin() as connection:
        sql = DriverSql(connection)
        stamp = sql.stamp(DELIVERY.c.created_at, now or utcnow())
        sql.many(
            "INSERT INTO link (hash, url, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            [(suffix.lstrip("."), url, stamp) for suffix, url in links.items()],
        )


def render_delivery(
    engine: Engine, renderer: Renderer, signer: Signer, delivery_id: int
) -> RenderedMessage:
    """The digest of `delivery_id` as its subscriber received it (tracking on, real tokens)."""
    delivered = load_delivery(engine, delivery_id)
    compiled: CompiledDigest = renderer.compile_digest(delivered.segment)
    store_links(engine, compiled.links)
    tokens = tokens_for(
        signer,
        subscriber_id=delivered.subscriber_id,
        list_id=delivered.list_id,
        delivery_id=delivery_id,
    )
    return compiled.personalise(recipient(delivered.name, tokens))
