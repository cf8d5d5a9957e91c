"""What a delivery's digest is made of, loaded back from the outbox, and rendered again.

`digest send` compiles a segment from the selection; "view in browser" (`GET /v/{token}`)
rebuilds the same segment from the delivery row (its topic ids, article ids, language and
edition date) with the builder the dispatcher uses (`digest.selection.segments`), and
personalises it with that delivery's own tokens, so the page is the message as it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from digest.catalog.articles import article_views
from digest.catalog.topics import topic_views
from digest.db.models import DeliveryStatus
from digest.db.tables import DELIVERY, EDITION
from digest.editions.workflow import load_controls
from digest.errors import NotFound
from digest.render.data import Recipient
from digest.render.renderer import RenderedMessage, Renderer
from digest.selection.segments import Issue, Segment, build_segment
from digest.tracking.links import store_links
from digest.tracking.tokens import Signer, tokens_for
from subscribers.tables import MAILING_LIST, SUBSCRIBER


@dataclass(frozen=True)
class DeliveredDigest:
    """One delivery's digest: who got it and the segment it was compiled from."""

    delivery_id: int
    subscriber_id: int
    list_id: int
    name: str
    segment: Segment


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
        topics = topic_views(connection)
        articles = article_views(connection, row.article_ids, topics)
        controls = load_controls(connection, row.edition_id)
    issue = Issue(row.list_name, row.cadence, row.local_date, row.locale, controls=controls)
    segment = build_segment(issue, row.article_ids, articles, row.topic_ids, topics)
    if not segment.articles or not segment.topics:
        raise NotFound(f"the articles of delivery {delivery_id} are gone")
    return DeliveredDigest(
        delivery_id, row.subscriber_id, row.list_id, row.subscriber_name or "", segment
    )


def render_delivery(
    engine: Engine, renderer: Renderer, signer: Signer, delivery_id: int, *, now: datetime
) -> RenderedMessage:
    """The digest of `delivery_id` as its subscriber received it (tracking on, real tokens)."""
    delivered = load_delivery(engine, delivery_id)
    compiled = renderer.compile_digest(delivered.segment)
    store_links(engine, compiled.links, now)
    tokens = tokens_for(
        signer,
        subscriber_id=delivered.subscriber_id,
        list_id=delivered.list_id,
        delivery_id=delivery_id,
    )
    return compiled.personalise(Recipient.with_tokens(delivered.name, tokens))
