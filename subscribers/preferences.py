"""A subscriber's own choices on one list: topics, send hour, timezone, language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import column, table
from sqlmodel import Session, col, select

from digest.errors import InvalidInput
from subscribers.consent import membership
from subscribers.lists import offered_topic_ids
from subscribers.models import MailingList, SubscriptionTopic
from subscribers.people import set_topics
from subscribers.validate import LOCALES, check_timezone

# The engine's topic table, read by name (this package never imports the engine).
_TOPIC = table("topic", column("id"), column("slug"), column("name"), column("name_en"))


class PreferenceError(InvalidInput):
    """A choice that cannot be saved; `code` names which, for a translated message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TopicChoice:
    id: int
    slug: str
    name: str
    name_en: str | None

    def label(self, locale: str) -> str:
        return self.name if locale == "ar" else (self.name_en or self.name)


@dataclass(frozen=True)
class Preferences:
    """What the preferences page shows and saves."""

    subscriber_id: int
    list_id: int
    email: str
    list_name: str
    status: str
    locale: str
    timezone: str
    send_hour: int | None  # None: the list's hour
    default_hour: int
    topics: tuple[TopicChoice, ...]  # offered by the list, in its order
    chosen: frozenset[int]  # empty: every topic


def load_preferences(session: Session, subscriber_id: int, list_id: int) -> Preferences:
    """The choices of a subscription; NotFound when the person or subscription is gone."""
    found = membership(session, subscriber_id, list_id)
    chosen = session.exec(
        select(SubscriptionTopic.topic_id).where(
            SubscriptionTopic.subscription_id == found.subscription.id
        )
    )
    return Preferences(
        subscriber_id=subscriber_id,
        list_id=list_id,
        email=found.subscriber.email,
        list_name=found.mailing_list.name,
        status=found.subscription.status,
        locale=found.subscriber.locale,
        timezone=found.subscriber.timezone,
        send_hour=found.subscription.send_hour,
        default_hour=found.mailing_list.default_hour,
        topics=tuple(_offered(session, found.mailing_list)),
        chosen=frozenset(chosen),
    )


@dataclass(frozen=True)
class Choices:
    """What a reader chose on the preferences page."""

    topic_ids: Sequence[int]
    hour: int | None
    timezone: str
    locale: str


def save_preferences(
    session: Session, *, subscriber_id: int, list_id: int, choices: Choices
) -> Preferences:
    """Store new choices; a PreferenceError (nothing stored) names the first bad one."""
    topic_ids, hour, timezone, locale = (
        choices.topic_ids,
        choices.hour,
        choices.timezone,
        choices.locale,
    )
    found = membership(session, subscriber_id, list_id)
    offered = [t.id for t in _offered(session, found.mailing_list)]
    if not topic_ids:
        raise PreferenceError("no_topic", "choose at least one topic")
    unknown = [t for t in topic_ids if t not in offered]
    if unknown:
        raise PreferenceError("unknown_topic", f"topic ids {unknown} are not offered")
    if hour is not None and not 0 <= hour <= 23:
        raise PreferenceError("bad_hour", f"hour {hour} is not between 0 and 23")
    try:
        check_timezone(timezone)
    except InvalidInput as exc:
        raise PreferenceError("bad_timezone", str(exc)) from None
    if locale not in LOCALES:
        raise PreferenceError("bad_locale", f"unknown language {locale!r}")
    # Every topic chosen is stored as "none": new topics the list adds later come too.
    wanted = [t for t in offered if t in set(topic_ids)]
    set_topics(session, found.subscription.id or 0, [] if wanted == offered else wanted)
    found.subscription.send_hour = hour
    found.subscriber.timezone = timezone
    found.subscriber.locale = locale
    session.add(found.subscription)
    session.add(found.subscriber)
    session.flush()
    return load_preferences(session, subscriber_id, list_id)


def _offered(session: Session, mailing_list: MailingList) -> list[TopicChoice]:
    """The list's topics in its order (a list offering none offers every topic)."""
    ids = offered_topic_ids(session, mailing_list.id or 0)
    query = select(_TOPIC.c.id, _TOPIC.c.slug, _TOPIC.c.name, _TOPIC.c.name_en)
    if ids:
        query = query.where(col(_TOPIC.c.id).in_(ids))
    rows = {row[0]: TopicChoice(*row) for row in session.execute(query)}
    order = ids or sorted(rows, key=lambda tid: rows[tid].slug)
    return [rows[tid] for tid in order if tid in rows]
