"""What an edition will send: its segments with their subscriber counts, and their emails.

Computed with the functions sending uses (`due_on`, `segments_for` with the
edition's controls, `Renderer.compile_digest`), with tracking off and nothing written.
Subscribers whose digest of the edition is already in the outbox are shown as it holds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, DeliveryStatus, Edition
from digest.editions.controls import EditionControls, Editorial
from digest.editions.workflow import controls_of, delivery_counts, get_edition, list_of
from digest.errors import InvalidInput, NotFound
from digest.preview.delivery import load_delivery
from digest.render.data import Recipient
from digest.render.renderer import RenderedMessage, Renderer
from digest.selection.due import Selection, due_on, segments_for
from digest.selection.segments import Segment
from digest.selection.window import Due
from subscribers.models import MailingList
from subscribers.people import find_subscription

SAMPLE = 3  # subscriber addresses shown per segment


@dataclass(frozen=True)
class SegmentView:
    """Subscribers who will get the same email, and that email's segment."""

    key: str
    segment: Segment
    subscribers: int
    sample: tuple[str, ...]  # a few of their addresses
    sample_name: str  # the first one's name, for the greeting of the preview
    members: frozenset[int]  # subscriber ids

    @property
    def anchor(self) -> str:
        """A name for the segment that survives edits: one of its readers (the key is a
        hash of its articles, so a pin changes it)."""
        return str(min(self.members))

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(t.slug for t in self.segment.topics)


@dataclass(frozen=True)
class EditionOverview:
    edition: Edition
    mailing_list: MailingList
    controls: EditionControls
    segments: list[SegmentView]
    nothing_new: int  # due, but nothing new for them: no email
    outbox: dict[str, int]  # rows already planned for the edition, by status

    def segment(self, anchor: str) -> SegmentView:
        """The segment of the reader `anchor` names (see `SegmentView.anchor`)."""
        for found in self.segments:
            if anchor.isdigit() and int(anchor) in found.members:
                return found
        raise NotFound(f"edition {self.edition.id} has no segment {anchor!r} (any more)")


def overview(
    engine: Engine, settings: Settings, edition_id: int, *, now: datetime
) -> EditionOverview:
    """The edition's segments for the subscribers not planned yet (biggest first)."""
    with Session(engine, expire_on_commit=False) as session:
        edition = get_edition(session, edition_id)
        mailing_list = list_of(session, edition)
        outbox = delivery_counts(session, edition_id)
        connection = session.connection()
        due = due_on(connection, mailing_list, edition.local_date, now=now)
        selection = _untracked(connection, edition, mailing_list, due, settings)
    views = [
        SegmentView(
            key=planned.key,
            segment=planned.segment,
            subscribers=len(planned.recipients),
            sample=tuple(d.email for d in planned.recipients[:SAMPLE]),
            sample_name=planned.recipients[0].name if planned.recipients else "",
            members=frozenset(d.subscriber_id for d in planned.recipients),
        )
        for planned in selection.segments
    ]
    views.sort(key=lambda v: (-v.subscribers, v.topics, v.key))
    controls = controls_of(edition)
    return EditionOverview(edition, mailing_list, controls, views, len(selection.empty), outbox)


def subscriber_segment(
    engine: Engine, settings: Settings, edition_id: int, email: str, *, now: datetime
) -> tuple[Segment, str] | None:
    """(segment, name) of the email `email` gets from this edition; None: nothing new."""
    with Session(engine, expire_on_commit=False) as session:
        edition = get_edition(session, edition_id)
        mailing_list = list_of(session, edition)
        subscriber, _ = find_subscription(session, email, mailing_list)
        delivery = session.exec(
            select(Delivery).where(
                Delivery.edition_id == edition_id, Delivery.subscriber_id == subscriber.id
            )
        ).first()
        if delivery is not None:  # already in the outbox: show what it holds
            if delivery.status == DeliveryStatus.SKIPPED or not delivery.article_ids:
                return None
            delivered = load_delivery(engine, delivery.id or 0)
            return dataclasses.replace(delivered.segment, tracking=False), delivered.name
        connection = session.connection()
        due: list[Due] = [
            d
            for d in due_on(connection, mailing_list, edition.local_date, now=now)
            if d.subscriber_id == subscriber.id
        ]
        if not due:
            raise InvalidInput(
                f"{subscriber.email} gets no digest of this edition "
                "(not active, suppressed, or not due that day)"
            )
        selection = _untracked(connection, edition, mailing_list, due, settings)
    if not selection.segments:
        return None
    return selection.segments[0].segment, subscriber.name


def _untracked(
    connection: Connection,
    edition: Edition,
    mailing_list: MailingList,
    due: list[Due],
    settings: Settings,
) -> Selection:
    """The segments of `due` in this edition, with its editors' controls and tracking off."""
    controls = controls_of(edition)
    return segments_for(
        connection,
        mailing_list,
        due,
        max_articles=settings.digest.max_articles,
        tracking=False,
        editorial=Editorial(mailing_list.needs_approval, {edition.local_date: controls}),
    )


def render_preview(renderer: Renderer, segment: Segment, name: str = "") -> RenderedMessage:
    """The email of `segment` as sent, with tracking off and placeholder tokens (as preview)."""
    compiled = renderer.compile_digest(dataclasses.replace(segment, tracking=False))
    return compiled.personalise(Recipient.preview(name))
