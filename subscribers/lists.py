"""Mailing lists: create, find, describe and delete; the topics a list offers, in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from digest.errors import AlreadyExists, InvalidInput, NotFound
from digest.text.controls import clean_line, clean_text
from subscribers.models import Cadence, ListTopic, MailingList, Subscription, SubscriptionStatus
from subscribers.validate import SLUG, check_hour, check_slug


@dataclass(frozen=True)
class ListSpec:
    """A list to create: it offers `topic_ids` in that order (none: every topic)."""

    slug: str
    name: str
    cadence: str = Cadence.DAILY
    hour: int = 7
    description: str = ""
    double_opt_in: bool = False
    needs_approval: bool = False
    topic_ids: Sequence[int] = ()


def create_list(session: Session, spec: ListSpec) -> MailingList:
    """A new list as `spec` describes it."""
    slug, cadence = spec.slug, spec.cadence
    name = clean_line(spec.name)[:200]  # text from the CLI: no controls, bidi overrides or NUL
    check_slug(slug, "list slug")
    if not name:
        raise InvalidInput(f"list {slug!r} needs a name (--name)")
    if cadence not in {c.value for c in Cadence}:
        raise InvalidInput(f"cadence {cadence!r} must be 'daily' or 'weekly'")
    check_hour(spec.hour)
    if session.exec(select(MailingList).where(MailingList.slug == slug)).first():
        raise AlreadyExists(f"list {slug!r} already exists")
    mailing_list = MailingList(
        slug=slug,
        name=name,
        cadence=cadence,
        default_hour=spec.hour,
        description=clean_text(spec.description),
        double_opt_in=spec.double_opt_in,
        needs_approval=spec.needs_approval,
    )
    session.add(mailing_list)
    session.flush()
    assert mailing_list.id is not None
    for position, topic_id in enumerate(dict.fromkeys(spec.topic_ids)):
        session.add(ListTopic(list_id=mailing_list.id, topic_id=topic_id, position=position))
    session.flush()
    return mailing_list


def get_list(session: Session, slug: str) -> MailingList:
    found = None
    if SLUG.match(slug):  # one that cannot exist is not looked up (PostgreSQL refuses a NUL)
        found = session.exec(select(MailingList).where(MailingList.slug == slug)).first()
    if found is None:
        raise NotFound(f"unknown list {slug!r}: see `digest lists list`")
    return found


def all_lists(session: Session) -> list[MailingList]:
    return list(session.exec(select(MailingList).order_by(col(MailingList.slug))))


def offered_topic_ids(session: Session, list_id: int) -> list[int]:
    """The topic ids a list offers, in its order (empty: the list offers every topic)."""
    rows = session.exec(
        select(ListTopic.topic_id)
        .where(ListTopic.list_id == list_id)
        .order_by(col(ListTopic.position))
    )
    return list(rows)


def subscription_counts(session: Session, list_id: int) -> dict[str, int]:
    rows = session.exec(
        select(Subscription.status, func.count())
        .where(Subscription.list_id == list_id)
        .group_by(col(Subscription.status))
    )
    counts = {status.value: 0 for status in SubscriptionStatus}
    counts.update({status: count for status, count in rows})
    return counts


def delete_list(session: Session, slug: str) -> int:
    """Delete a list and its subscriptions (subscribers stay); returns subscriptions removed."""
    mailing_list = get_list(session, slug)
    removed = sum(subscription_counts(session, mailing_list.id or 0).values())
    session.execute(delete(MailingList).where(col(MailingList.id) == mailing_list.id))
    return removed


def list_as_dict(
    mailing_list: MailingList, topic_slugs: Sequence[str], counts: dict[str, int]
) -> dict[str, Any]:
    return {
        "slug": mailing_list.slug,
        "name": mailing_list.name,
        "description": mailing_list.description,
        "cadence": mailing_list.cadence,
        "hour": mailing_list.default_hour,
        "double_opt_in": mailing_list.double_opt_in,
        "needs_approval": mailing_list.needs_approval,
        "topics": list(topic_slugs),
        "subscriptions": counts,
    }
