"""Editor preview: the digest a subscriber or a topic mix would get, rendered untracked.

The reader's window (`digest.selection.window.reader_window`), selection
(`digest.selection.segments_for`) and rendering (`Renderer.compile_digest`, then
`personalise`) are the very functions sending uses; only tracking is off and the tokens are
placeholders. A subscriber's window starts at the cutoff of their last digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from digest.catalog.topics import get_topics, topic_views
from digest.clock import utcnow
from digest.config import Settings
from digest.db.models import Topic
from digest.editions.workflow import load_editorial
from digest.errors import InvalidInput, NotFound
from digest.render.data import Recipient
from digest.render.renderer import RenderedMessage, Renderer
from digest.selection.due import segments_for
from digest.selection.queries import previous_cutoff
from digest.selection.segments import Issue, Segment, build_segment
from digest.selection.window import Due, due_moment, reader_window, zone
from subscribers.lists import get_list, offered_topic_ids
from subscribers.models import MailingList, Subscription, SubscriptionTopic
from subscribers.people import check_topics_offered, find_subscriber


@dataclass(frozen=True)
class Audience:
    """Who the preview is for: topics in order, language, timezone, send hour, name."""

    topics: list[Topic]
    locale: str
    timezone: str
    hour: int
    name: str = ""
    subscriber_id: int | None = None


def audience(
    session: Session,
    settings: Settings,
    mailing_list: MailingList,
    *,
    email: str | None = None,
    topic_slugs: Sequence[str] = (),
) -> Audience:
    """The subscriber's choices on the list, or a topic mix, or everything the list offers."""
    default_hour = mailing_list.default_hour
    if email is not None:
        subscriber = find_subscriber(session, email)
        subscription = session.exec(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.list_id == mailing_list.id,
            )
        ).first()
        if subscription is None:
            raise NotFound(f"{subscriber.email} is not subscribed to list {mailing_list.slug!r}")
        chosen = list(
            session.exec(
                select(SubscriptionTopic.topic_id)
                .where(SubscriptionTopic.subscription_id == subscription.id)
                .order_by(col(SubscriptionTopic.position))
            )
        )
        topics = _topics_by_id(session, chosen) or _list_topics(session, mailing_list)
        hour = default_hour if subscription.send_hour is None else subscription.send_hour
        return Audience(
            topics, subscriber.locale, subscriber.timezone, hour, subscriber.name, subscriber.id
        )
    if topic_slugs:
        topics = _topics_by_slug(session, topic_slugs)
        check_topics_offered(
            session, mailing_list, [t.id or 0 for t in topics], [t.slug for t in topics]
        )
    else:
        topics = _list_topics(session, mailing_list)
    return Audience(topics, settings.digest.locale, settings.digest.timezone, default_hour)


def preview(
    session: Session,
    settings: Settings,
    renderer: Renderer,
    *,
    list_slug: str,
    email: str | None = None,
    topic_slugs: Sequence[str] = (),
    day: date | None = None,
    now: datetime | None = None,
) -> RenderedMessage:
    """The email `email` (or this topic mix) would get for `day`, with tracking off.

    For a `day`, the window is the one sending takes for it: it ends at the send hour of
    that day in the audience's timezone, or now once that hour has passed. Without one it
    ends now (what would go out if sent at once).
    """
    if email is not None and topic_slugs:
        raise InvalidInput("give either a subscriber or topics, not both")
    mailing_list = get_list(session, list_slug)
    who = audience(session, settings, mailing_list, email=email, topic_slugs=topic_slugs)
    if not who.topics:
        raise InvalidInput("there are no topics yet: add some with `digest topics add`")
    now = now or utcnow()
    if day is None:  # what would go out if sent at once
        day, moment = now.astimezone(zone(who.timezone)).date(), now
    else:
        moment = due_moment(day, who.timezone, who.hour)
    connection = session.connection()
    cutoff = None
    if who.subscriber_id is not None:  # a subscriber's window starts at their last cutoff
        cutoff = previous_cutoff(connection, mailing_list.id or 0, who.subscriber_id)
    start, end = reader_window(moment, now, cutoff, mailing_list.cadence)
    due = Due(
        subscription_id=0,
        subscriber_id=who.subscriber_id or 0,
        email="",
        name=who.name,
        locale=who.locale,
        topic_ids=tuple(t.id for t in who.topics if t.id is not None),
        local_date=day,
        window_start=start,
        window_end=end,
    )
    editorial = load_editorial(connection, mailing_list, [day])  # the editors' controls
    selection = segments_for(
        connection,
        mailing_list,
        [due],
        max_articles=settings.digest.max_articles,
        tracking=False,
        editorial=editorial,
    )
    if selection.segments:
        segment: Segment = selection.segments[0].segment
    else:  # nothing new: show the (empty) digest the editor would otherwise not see
        issue = Issue.of(
            mailing_list, day, who.locale, tracking=False, controls=editorial.controls(day)
        )
        segment = build_segment(issue, (), {}, due.topic_ids, topic_views(connection))
    compiled = renderer.compile_digest(segment)
    return compiled.personalise(Recipient.preview(who.name))


def _list_topics(session: Session, mailing_list: MailingList) -> list[Topic]:
    """The topics the list offers in its order; a list offering none offers them all."""
    offered = offered_topic_ids(session, mailing_list.id or 0)
    if offered:
        return _topics_by_id(session, offered)
    return list(session.exec(select(Topic).order_by(col(Topic.slug))))


def _topics_by_id(session: Session, ids: Sequence[int]) -> list[Topic]:
    found = {t.id: t for t in session.exec(select(Topic).where(col(Topic.id).in_(ids)))}
    return [found[i] for i in ids if i in found]


def _topics_by_slug(session: Session, slugs: Sequence[str]) -> list[Topic]:
    return get_topics(session, list(dict.fromkeys(slugs)))
