"""Tables of the engine: topics, feeds, articles, editions, deliveries and tracked links."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from digest.clock import utcnow


def _json_list() -> Column[list[int]]:
    return Column(JSON, nullable=False, server_default="[]")


class Topic(SQLModel, table=True):
    """A subject subscribers choose (سياسة، اقتصاد …); articles are tagged with topics."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class TagReason(StrEnum):
    """Why an article carries a topic: its feed's default, a feed category, or a keyword."""

    FEED = "feed"
    CATEGORY = "category"
    KEYWORD = "keyword"


class Feed(SQLModel, table=True):
    """A source of articles: an http(s) URL or a local file, with conditional-GET state."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(index=True, unique=True, max_length=2048)
    title: str = Field(default="", max_length=500)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    last_fetched_at: datetime | None = None  # last attempt, successful or not
    last_error: str | None = None  # None after a successful fetch
    created_at: datetime = Field(default_factory=utcnow)


class FeedTopic(SQLModel, table=True):
    """A topic every article of a feed gets (the feed's default topics)."""

    __tablename__ = "feed_topic"

    feed_id: int = Field(
        sa_column=Column(Integer, ForeignKey("feed.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True)
    )


class Article(SQLModel, table=True):
    """One news item. `ingested_at` is set once, when we first stored it: digest windows use it.

    Identity: (feed, `guid`) when the feed gives a guid, else the canonical `url` within the
    feed: two feeds using the same guid have an article each. An article whose feed was
    removed (`feed_id` NULL) is taken back by its feed if that is added again.
    """

    __table_args__ = (Index("ux_article_feed_id_guid", "feed_id", "guid", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("feed.id", ondelete="SET NULL"), index=True),
    )
    guid: str | None = Field(default=None, max_length=2048)
    url: str = Field(index=True, max_length=2048)
    title: str
    summary: str = ""  # plain text
    body_html: str = ""  # sanitised (nh3), safe inside an <mj-text>
    image_url: str | None = Field(default=None, max_length=2048)
    author: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=16)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = Field(default=None, index=True)  # from the feed, if sane
    ingested_at: datetime = Field(default_factory=utcnow, index=True)  # our clock, never changes
    updated_at: datetime | None = None  # last time the feed changed the item


class ArticleTopic(SQLModel, table=True):
    """A topic of an article and why it was given (`detail`: the feed, category or keyword)."""

    __tablename__ = "article_topic"

    article_id: int = Field(
        sa_column=Column(Integer, ForeignKey("article.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    reason: str = Field(max_length=16)
    detail: str = Field(default="", max_length=500)


class EditionStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"


class Edition(SQLModel, table=True):
    """A list's issue for one local date; every subscriber gets at most one delivery of it."""

    __table_args__ = (UniqueConstraint("list_id", "local_date"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(
        sa_column=Column(Integer, ForeignKey("mailing_list.id", ondelete="CASCADE"), nullable=False)
    )
    local_date: date
    status: str = Field(default=EditionStatus.DRAFT, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    # Editor controls (digest/editions/workflow.py), read by selection and rendering. Pinned
    # articles lead, the last pinned first; "top" ones go to every subscriber, whatever
    # their topics.
    pinned_ids: list[int] = Field(default_factory=list, sa_column=_json_list())
    top_ids: list[int] = Field(default_factory=list, sa_column=_json_list())
    excluded_ids: list[int] = Field(default_factory=list, sa_column=_json_list())
    topic_order: list[int] = Field(default_factory=list, sa_column=_json_list())
    subjects: dict[str, str] = Field(  # locale -> subject template (placeholders as in settings)
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    note: str = Field(default="", sa_column_kwargs={"server_default": ""})
    approved_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=320)
    released_at: datetime | None = None  # lateness counts from here after a hold


class Editor(SQLModel, table=True):
    """A newsroom account of the web preview; the password is stored as an Argon2id hash."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class EditorAction(SQLModel, table=True):
    """Who did what to an edition, and when (shown on the edition)."""

    __tablename__ = "editor_action"

    id: int | None = Field(default=None, primary_key=True)
    edition_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("edition.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    actor: str = Field(max_length=320)  # an editor's email, or `cli:USER`
    action: str = Field(max_length=32)
    detail: str = Field(default="", max_length=1000)
    at: datetime = Field(default_factory=utcnow)


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED_TEMPORARY = "failed_temporary"
    FAILED_PERMANENT = "failed_permanent"
    SKIPPED = "skipped"


class Delivery(SQLModel, table=True):
    """The outbox: one row per (edition, subscriber), written before the SMTP transaction.

    `window_end` is the cutoff of this digest: the next one holds articles ingested after it.
    """

    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id"),
        Index("ix_delivery_list_subscriber", "list_id", "subscriber_id"),
        Index("ix_delivery_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    edition_id: int = Field(
        sa_column=Column(Integer, ForeignKey("edition.id", ondelete="CASCADE"), nullable=False)
    )
    list_id: int = Field(
        sa_column=Column(Integer, ForeignKey("mailing_list.id", ondelete="CASCADE"), nullable=False)
    )
    subscriber_id: int = Field(
        sa_column=Column(Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False)
    )
    status: str = Field(default=DeliveryStatus.QUEUED, max_length=24)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    window_start: datetime
    window_end: datetime
    locale: str = Field(default="ar", max_length=8)
    topic_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    article_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Indexed: a bounce whose VERP address was rewritten is traced back by the Message-ID.
    message_id: str | None = Field(default=None, max_length=255, index=True)
    smtp_code: int | None = None
    smtp_message: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # Set while a `digest worker` holds the row in `sending`: who, and until when. A row in
    # `sending` whose lease has run out was left by a dead worker and is claimed again.
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None


class Link(SQLModel, table=True):
    """A tracked destination: click tokens end in `.{hash}`; the web app redirects only here."""

    hash: str = Field(primary_key=True, max_length=32)
    url: str = Field(max_length=2048)
    created_at: datetime = Field(default_factory=utcnow)


class EventKind(StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    COMPLAINT = "complaint"
    CONFIRM = "confirm"


class Event(SQLModel, table=True):
    """Something a subscriber (or a machine on their behalf) did: open, click, unsubscribe …

    `machine` flags proxies and scanners (`machine_reason` says which) so that they are
    counted apart from people. Rows are pruned by `at` after the retention period.
    """

    __table_args__ = (Index("ix_event_delivery_kind", "delivery_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    delivery_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("delivery.id", ondelete="CASCADE"), nullable=True),
    )
    subscriber_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    list_id: int | None = None
    link_hash: str | None = Field(default=None, max_length=32)
    machine: bool = False
    machine_reason: str = Field(default="", max_length=32)
    user_agent: str = Field(default="", max_length=300)
    ip: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)


class EditorSession(SQLModel, table=True):
    """A signed-in editor: the cookie holds a random id, stored here only as its SHA-256.

    Logging out (or a new password: `stamp` no longer matches) ends it at once, whatever the
    cookie's own lifetime.
    """

    __tablename__ = "editor_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    editor_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("editor.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    stamp: str = Field(max_length=64)  # a fingerprint of the password hash it was opened with
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class InboundKind(StrEnum):
    """What one inbound message (or ESP event) is: exactly one of these."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    DELAYED = "delayed"  # a delivery-delay warning: recorded, never counted
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"  # mail to the `u-` mailto address
    AUTO_REPLY = "auto_reply"
    CHALLENGE = "challenge"  # challenge-response ("confirm you are human")
    UNKNOWN = "unknown"


class InboundMessage(SQLModel, table=True):
    """The raw bytes of a message that came in (or an ESP payload), kept `[inbound] keep_days`
    for audit. `sha256` is unique: the same message delivered twice is processed once."""

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    source: str = Field(max_length=16)  # smtp, file, stdin, imap, ses, postmark, sendgrid, mailgun
    sha256: str = Field(index=True, unique=True, max_length=64)
    size: int = 0
    envelope_from: str = Field(default="", max_length=320)
    envelope_to: str = Field(default="", max_length=2000)  # RCPT TO addresses, comma separated
    raw: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))


class InboundEvent(SQLModel, table=True):
    """What an inbound message meant and what was done about it (kept after the raw bytes go).

    Plain ids for delivery, subscriber, list and edition (no foreign keys): the record outlives
    them, like a suppression's."""

    __tablename__ = "inbound_event"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    source: str = Field(max_length=16)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    message_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("inbound_message.id", ondelete="SET NULL"), nullable=True
        ),
    )
    delivery_id: int | None = Field(default=None, index=True)
    subscriber_id: int | None = Field(default=None, index=True)
    list_id: int | None = None
    edition_id: int | None = Field(default=None, index=True)
    address: str = Field(default="", max_length=320)
    email_key: str = Field(default="", max_length=320, index=True)
    status: str = Field(default="", max_length=16)  # RFC 3463 enhanced code, "5.1.1"
    smtp_code: int | None = None
    diagnostic: str = Field(default="", max_length=1000)
    reason: str = Field(default="", max_length=300)  # how it was identified, or why "unknown"
    action: str = Field(default="", max_length=100)  # what was done: suppressed, counted 2/3 …
    external_id: str | None = Field(default=None, max_length=255, unique=True)  # an ESP event id
