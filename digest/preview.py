"""Editor preview: the segment a subscriber or a topic mix would get, rendered untracked.

`window_articles` is the stand-in for the select stage: articles of the topics ingested in
the list's window, newest first, capped.  Rendering goes through `Renderer.compile_digest`
and `personalise`, the path sending takes, with tracking off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput, NotFound
from digest.models import Article, ArticleTopic, Topic
from digest.render import ArticleView, Recipient, RenderedMessage, Renderer, Segment, TopicView
from digest.topics import get_topics
from subscribers.lists import get_list, offered_topic_ids
from subscribers.models import Cadence, MailingList, Subscription, SubscriptionTopic
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


def window(cadence: str, end: datetime) -> tuple[datetime, datetime]:
    """The ingestion window of a digest sent at `end`: a day, or a week for weekly lists."""
    span = timedelta(days=7) if cadence == Cadence.WEEKLY else timedelta(days=1)
    return end - span, end


def window_articles(
    session: Session,
    *,
    topic_ids: Sequence[int],
    start: datetime,
    end: datetime,
    limit: int,
) -> list[Article]:
    """Articles tagged with any of `topic_ids`, ingested in [start, end), newest first."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # stored in UTC
    tagged = select(ArticleTopic.article_id).where(col(ArticleTopic.topic_id).in_(topic_ids))
    query = (
        select(Article)
        .where(col(Article.id).in_(tagged))
        .where(col(Article.ingested_at) >= start, col(Article.ingested_at) < end)
        .order_by(col(Article.ingested_at).desc(), col(Article.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


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
        return Audience(topics, subscriber.locale, subscriber.timezone, hour, subscriber.name)
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
    start, end = window(mailing_list.cadence, end)
    found = window_articles(
        session,
        topic_ids=[t.id for t in who.topics if t.id is not None],
        start=start,
        end=end,
        limit=settings.digest.max_articles,
    )
    segment = Segment(
        articles=tuple(article_views(session, found, who.topics)),
        topics=tuple(TopicView(t.slug, t.name, t.name_en) for t in who.topics),
        date=day,
        list_name=mailing_list.name,
        locale=who.locale,
        cadence=mailing_list.cadence,
        tracking=False,
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


def article_views(
    session: Session, articles: Sequence[Article], order: Sequence[Topic]
) -> list[ArticleView]:
    """Plain views of `articles`; each one's topics listed in the audience's order."""
    ids = [a.id for a in articles if a.id is not None]
    rank = {t.id: i for i, t in enumerate(order)}
    slugs = {t.id: t.slug for t in order}
    tags: dict[int, list[int]] = {}
    for article_id, topic_id in session.exec(
        select(ArticleTopic.article_id, ArticleTopic.topic_id).where(
            col(ArticleTopic.article_id).in_(ids)
        )
    ):
        if topic_id in rank:
            tags.setdefault(article_id, []).append(topic_id)
    return [
        ArticleView(
            id=article.id,
            title=article.title,
            url=article.url,
            summary=article.summary,
            image_url=article.image_url,
            published_at=article.published_at,
            topics=tuple(slugs[t] for t in sorted(tags.get(article.id, []), key=rank.__getitem__)),
            body_chars=len(" ".join(_TAGS.sub(" ", article.body_html).split())),
        )
        for article in articles
        if article.id is not None
    ]


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
