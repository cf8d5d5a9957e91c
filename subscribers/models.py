"""Tables of the audience: lists, subscribers, subscriptions with consent, suppressions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    column,
    false,
    table,
)
from sqlmodel import Field, SQLModel

from digest.clock import utcnow


class Cadence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriptionStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"


# The topic table belongs to the engine (digest.db.models.Topic); the audience only reads its
# id, slug and name, by table name, so that this package never imports the engine.
TOPIC = table("topic", column("id"), column("slug"), column("name"))


def _fk(target: str, *, index: bool = True) -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=False, index=index)


class MailingList(SQLModel, table=True):
    """A newsletter people subscribe to; it offers a set of topics in an order."""

    __tablename__ = "mailing_list"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    description: str = ""
    cadence: str = Field(default=Cadence.DAILY, max_length=16)
    default_hour: int = 7
    double_opt_in: bool = False
    # Editions wait for an editor's approval before they go out (else drafts go at their time).
    needs_approval: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow)


class ListTopic(SQLModel, table=True):
    """A topic a list offers, at a position (the default topic order of its digests)."""

    __tablename__ = "list_topic"

    list_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("mailing_list.id", ondelete="CASCADE"), primary_key=True
        )
    )
    topic_id: int = Field(
        sa_column=Column(Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True)
    )
    position: int = 0


class Subscriber(SQLModel, table=True):
    """A person; `email` is stored with its domain lower-cased, and is unique."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="ar", max_length=8)
    timezone: str = Field(default="Asia/Riyadh", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    """A subscriber on a list, with the consent record that makes sending lawful."""

    __table_args__ = (
        UniqueConstraint("subscriber_id", "list_id"),
        # Selection reads a list's active subscriptions; the unique key serves per-person lookups.
        Index("ix_subscription_list_status", "list_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(sa_column=_fk("subscriber.id", index=False))
    list_id: int = Field(sa_column=_fk("mailing_list.id", index=False))
    status: str = Field(default=SubscriptionStatus.UNCONFIRMED, max_length=16)
    send_hour: int | None = None  # None: the list's default hour
    requested_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None
    withdrawn_at: datetime | None = None
    source: str = Field(default="cli", max_length=32)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    consent_version: str = Field(default="1", max_length=32)


class SubscriptionTopic(SQLModel, table=True):
    """A topic a subscription chose; none at all means every topic the list offers."""

    __tablename__ = "subscription_topic"

    subscription_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("subscription.id", ondelete="CASCADE"), primary_key=True
        )
    )
    topic_id: int = Field(
        sa_column=Column(Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True)
    )
    position: int = 0


class Suppression(SQLModel, table=True):
    """An address that must never be mailed again, on any list."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    reason: str = Field(default=SuppressionReason.MANUAL, max_length=16)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)
