"""Tables of the audience: lists, subscribers, subscriptions with consent, suppressions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    column,
    false,
    table,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlmodel import Field, SQLModel

from digest.clock import utcnow
from subscribers.validate import email_key


class Cadence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriptionStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"  # [inbound] soft_bounce_limit soft bounces in a row
    COMPLAINT = "complaint"
    MANUAL = "manual"


# The topic table belongs to the engine (digest.db.models.Topic); the audience only reads its
# id, slug and name, by table name, so that this package never imports the engine.
TOPIC = table("topic", column("id"), column("slug"), column("name"))


def _key_of_email(context: DefaultExecutionContext) -> str:
    """The key of the row's `email`, for inserts that do not give one (written by the ORM)."""
    parameters = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return email_key(str(parameters["email"]))


def _email_key_column() -> Column[str]:
    """`email_key`: the address as every lookup matches it (see validate.email_key)."""
    return Column(String(320), nullable=False, unique=True, index=True, default=_key_of_email)


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
    """A person; `email` is stored as written (domain lower-cased) and mailed as such; every
    lookup goes by `email_key`, unique, so addresses differing in case are one person."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    # Filled from `email` on insert when not given (None until then).
    email_key: str | None = Field(default=None, sa_column=_email_key_column())
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
    # Lookups and joins go by the key (any case or IDN spelling of a suppressed address).
    email_key: str | None = Field(default=None, sa_column=_email_key_column())
    reason: str = Field(default=SuppressionReason.MANUAL, max_length=16)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    # A hard bounce's reply and where it came from, so that one run's suppressions can be
    # found and lifted together (`digest subscribers unsuppress --since`). Plain ids, no
    # foreign keys: the record outlives the delivery and the edition.
    smtp_code: int | None = None
    enhanced: str | None = Field(default=None, max_length=16)  # RFC 3463 "5.1.1"
    delivery_id: int | None = None
    edition_id: int | None = None
    list_id: int | None = None


class LiftedSuppression(SQLModel, table=True):
    """A suppression that was lifted: what it was, who lifted it, when and why (the audit)."""

    __tablename__ = "lifted_suppression"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, max_length=320)
    email_key: str = Field(index=True, max_length=320)  # what lookups match (validate.email_key)
    reason: str = Field(max_length=16)
    note: str = ""
    smtp_code: int | None = None
    enhanced: str | None = Field(default=None, max_length=16)
    delivery_id: int | None = None
    edition_id: int | None = None
    list_id: int | None = None
    suppressed_at: datetime
    lifted_at: datetime = Field(default_factory=utcnow)
    lifted_by: str = Field(max_length=320)
    why: str = Field(max_length=500)


class ConsentAction(StrEnum):
    """One step of a subscription's consent history."""

    REQUESTED = "requested"  # someone asked for a confirmation link (not yet consent)
    CONFIRMED = "confirmed"  # the link's holder confirmed (double opt-in)
    RESUBSCRIBED = "resubscribed"  # a withdrawn subscription re-opened by its holder
    WITHDRAWN = "withdrawn"
    ADDED = "added"  # an editor or an import, consent given elsewhere
    IMPORTED = "imported"
    SUPPRESSED = "suppressed"


class ConsentEvent(SQLModel, table=True):
    """One step of a subscription's consent history: appended, never overwritten."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(sa_column=_fk("subscription.id"))
    action: str = Field(max_length=16)
    at: datetime = Field(default_factory=utcnow)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    source: str = Field(default="cli", max_length=32)
    consent_version: str = Field(default="1", max_length=32)


class PendingConfirmation(SQLModel, table=True):
    """The confirmation link a subscription is waiting for: only the newest nonce confirms,
    and only until it expires; the subscription itself is not touched until then."""

    __tablename__ = "pending_confirmation"
    __table_args__ = (UniqueConstraint("subscriber_id", "list_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(sa_column=_fk("subscriber.id", index=False))
    list_id: int = Field(sa_column=_fk("mailing_list.id"))
    nonce: int = Field(sa_column=Column(BigInteger, nullable=False))
    requested_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None  # the last confirmation mailed (the per-address cooldown)
    source: str = Field(default="web", max_length=32)


class SubscriptionRequest(SQLModel, table=True):
    """A public form's request, queued as typed: a worker decides what it means and mails
    the confirmation, so the form answers the same way whatever the address."""

    __tablename__ = "subscription_request"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    list_id: int = Field(sa_column=_fk("mailing_list.id"))
    locale: str = Field(default="ar", max_length=8)
    timezone: str = Field(default="Asia/Riyadh", max_length=64)
    source: str = Field(default="web", max_length=32)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    consent_version: str = Field(default="1", max_length=32)
    requested_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    # Due when this moment has passed; a worker that claims the row moves it forward (lease).
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)


class SubscriberAlias(SQLModel, table=True):
    """A subscriber id merged into another (addresses that differed only in case): links
    already mailed carry the old id and must still unsubscribe the person."""

    __tablename__ = "subscriber_alias"

    id: int = Field(primary_key=True)  # the old subscriber id (no row of its own any more)
    subscriber_id: int = Field(sa_column=_fk("subscriber.id"))
    email: str = Field(max_length=320)  # the address the old row held
    merged_at: datetime = Field(default_factory=utcnow)


class RetiredSubscriberId(SQLModel, table=True):
    """An erased subscriber's id (or one of its aliases'): never handed out again, since
    links mailed with it still circulate. Only the id is kept, nothing about the person."""

    __tablename__ = "retired_subscriber_id"

    id: int = Field(primary_key=True)
    retired_at: datetime = Field(default_factory=utcnow)
