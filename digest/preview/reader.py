"""Editor preview: the digest a subscriber or a topic mix would get, rendered untracked.

Selection (`digest.selection.due.segments_for`) and rendering (`Renderer.compile_digest`, then
`personalise`) are the very functions sending uses; only tracking is off and the tokens are
placeholders. A subscriber's window starts at the cutoff of their last digest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from digest.catalog.topics import get_topics
from digest.clock import utcnow
from digest.config import Settings
from digest.db.models import Topic
from digest.editions.workflow import load_editorial
from digest.errors import InvalidInput, NotFound
from digest.render.renderer import Recipient, RenderedMessage, Renderer, Segment, TopicView
from digest.selection.due import Due, first_window, previous_cutoff, segments_for
from subscribers.lists import get_list, offered_topic_ids
from subscribers.models import MailingList, Subscription, SubscriptionTopic
from subscribers.people import check_topics_offered, find_subscriber

# Tokens of a preview: the links show their shape, and lead to the web app's generic answer.
PREVIEW_TOKEN = "preview"
_TAGS = re.compile(r"<[^>]*>")


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

    For a `day`, the window ends at the send hour of that day in the audience's timezone;
    without one it ends now (what would go out if sent at once).
    """
    if email is not None and topic_slugs:
        raise InvalidInput("give either a subscriber or topics, not both")
    mailing_list = get_list(session, list_slug)
    who = audience(session, settings, mailing_list, email=email, topic_slugs=topic_slugs)
    if not who.topics:
        raise InvalidInput("there are no topics yet: add some with `digest topics add`")
    zone = ZoneInfo(who.timezone)
    if day is None:
        end = now or utcnow()
        day = end.astimezone(zone).date()
    else:
        end = datetime.combine(day, time(who.hour), tzinfo=zone)
    start = end - first_window(mailing_list.cadence)
    connection = session.connection()
    if who.subscriber_id is not None:  # a subscriber's window starts at their last cutoff
        cutoff = previous_cutoff(connection, mailing_list.id or 0, who.subscriber_id)
        start = cutoff if cutoff is not None and cutoff < end else start
    due = Due(
        subscription_id=0,
        subscriber_id=who.subscriber_id or 0,
        email="",
        name=who.name,
        locale=who.locale,
        topic_ids=tuple(t.id for t in who.topics if t.id is not None),
        local_date=day,
        window_start=start.astimezone(UTC),
        window_end=end.astimezone(UTC),
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
        segment = selection.segments[0].segment
    else:  # nothing new: show the (empty) digest the editor would otherwise not see
        controls = editorial.controls(day)
        segment = Segment(
            articles=(),
            topics=tuple(TopicView(t.slug, t.name, t.name_en) for t in who.topics),
            date=day,
            list_name=mailing_list.name,
            locale=who.locale,
            cadence=mailing_list.cadence,
            tracking=False,
            note=controls.note if controls else "",
            subject=controls.subject_for(who.locale) if controls else None,
        )
    compiled = renderer.compile_digest(segment)
    token = PREVIEW_TOKEN
    return compiled.personalise(
        Recipient(
            name=who.name,
            view_token=token,
            unsubscribe_token=token,
            preferences_token=token,
            open_token=token,
            click_token=token,
        )
    )


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
