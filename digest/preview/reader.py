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

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from digest.catalog.topics import get_topics, topic_views
from digest.clock import utcnow
from digest.config import Settings
from digest.db.models import Topic
from digest.editions.workflow import load_editorial
from digest.errors import InvalidInput
from digest.render.data import Recipient
from digest.render.renderer import RenderedMessage, Renderer
from digest.selection.due import segments_for
from digest.selection.queries import previous_cutoff
from digest.selection.segments import Issue, Segment, build_segment
from digest.selection.window import Due, due_moment, reader_window, zone
from subscribers.lists import get_list, offered_topic_ids
from subscribers.models import MailingList, SubscriptionTopic
from subscribers.people import check_topics_offered, find_subscription


@dataclass(frozen=True)
class PreviewRequest:
    """What to preview: a list's digest for one subscriber (`email`) or a topic mix
    (`topic_slugs`; neither: everything the list offers), for `day` as seen at `now`.

    Without a `day`, the digest that would go out if sent at once; `now` defaults to the clock.
    """

    list_slug: str
    email: str | None = None
    topic_slugs: Sequence[str] = ()
    day: date | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class PreviewOptions:
    """What previews read from the settings, copied once at the entry point: the language
    and timezone of a topic mix, and the cap on articles per digest."""

    locale: str
    timezone: str
    max_articles: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PreviewOptions:
        digest = settings.digest
        return cls(digest.locale, digest.timezone, digest.max_articles)


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
    options: PreviewOptions,
    mailing_list: MailingList,
    request: PreviewRequest,
) -> Audience:
    """The subscriber's choices on the list, or a topic mix, or everything the list offers."""
    default_hour = mailing_list.default_hour
    if request.email is not None:
        subscriber, subscription = find_subscription(session, request.email, mailing_list)
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
    if request.topic_slugs:
        topics = _topics_by_slug(session, request.topic_slugs)
        check_topics_offered(
            session, mailing_list, [t.id or 0 for t in topics], [t.slug for t in topics]
        )
    else:
        topics = _list_topics(session, mailing_list)
    return Audience(topics, options.locale, options.timezone, default_hour)


def preview(
    session: Session, options: PreviewOptions, renderer: Renderer, request: PreviewRequest
) -> RenderedMessage:
    """The email `request` describes, with tracking off.

    For a `day`, the window is the one sending takes for it: it ends at the send hour of
    that day in the audience's timezone, or now once that hour has passed. Without one it
    ends now (what would go out if sent at once).
    """
    if request.email is not None and request.topic_slugs:
        raise InvalidInput("give either a subscriber or topics, not both")
    mailing_list = get_list(session, request.list_slug)
    who = audience(session, options, mailing_list, request)
    if not who.topics:
        raise InvalidInput("there are no topics yet: add some with `digest topics add`")
    connection = session.connection()
    due = _due(connection, mailing_list, who, request.day, request.now or utcnow())
    segment = _segment(connection, mailing_list, due, options.max_articles)
    compiled = renderer.compile_digest(segment)
    return compiled.personalise(Recipient.preview(who.name))


def _due(
    connection: Connection,
    mailing_list: MailingList,
    who: Audience,
    day: date | None,
    now: datetime,
) -> Due:
    """The audience's digest of `day` (None: now's), with the window sending would take."""
    if day is None:  # what would go out if sent at once
        day, moment = now.astimezone(zone(who.timezone)).date(), now
    else:
        moment = due_moment(day, who.timezone, who.hour)
    cutoff = None
    if who.subscriber_id is not None:  # a subscriber's window starts at their last cutoff
        cutoff = previous_cutoff(connection, mailing_list.id or 0, who.subscriber_id)
    start, end = reader_window(moment, now, cutoff, mailing_list.cadence)
    return Due(
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


def _segment(
    connection: Connection, mailing_list: MailingList, due: Due, max_articles: int
) -> Segment:
    """The segment `due` gets, steered by the editors' controls, untracked; with nothing
    new, the (empty) digest the editor would otherwise not see."""
    day = due.local_date
    editorial = load_editorial(connection, mailing_list, [day])
    selection = segments_for(
        connection,
        mailing_list,
        [due],
        max_articles=max_articles,
        tracking=False,
        editorial=editorial,
    )
    if selection.segments:
        return selection.segments[0].segment
    issue = Issue.of(
        mailing_list, day, due.locale, tracking=False, controls=editorial.controls(day)
    )
    return build_segment(issue, (), {}, due.topic_ids, topic_views(connection))


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
