"""web: subscription requests and confirmations queued, consent history

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_AT = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("action", _TEXT(length=16), nullable=False),
        sa.Column("at", _AT(), nullable=False),
        sa.Column("ip", _TEXT(length=64), nullable=True),
        sa.Column("user_agent", _TEXT(length=512), nullable=True),
        sa.Column("source", _TEXT(length=32), nullable=False),
        sa.Column("consent_version", _TEXT(length=32), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_event_subscription_id"), ["subscription_id"], unique=False
        )
    op.create_table(
        "pending_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", _AT(), nullable=False),
        sa.Column("sent_at", _AT(), nullable=True),
        sa.Column("source", _TEXT(length=32), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["list_id"], ["mailing_list.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "list_id"),
    )
    with op.batch_alter_table("pending_confirmation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_confirmation_list_id"), ["list_id"], unique=False
        )
    _requests()
    _history()


def _requests() -> None:
    op.create_table(
        "subscription_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", _TEXT(length=320), nullable=False),
        sa.Column("name", _TEXT(length=200), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("locale", _TEXT(length=8), nullable=False),
        sa.Column("timezone", _TEXT(length=64), nullable=False),
        sa.Column("source", _TEXT(length=32), nullable=False),
        sa.Column("ip", _TEXT(length=64), nullable=True),
        sa.Column("user_agent", _TEXT(length=512), nullable=True),
        sa.Column("consent_version", _TEXT(length=32), nullable=False),
        sa.Column("requested_at", _AT(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _AT(), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["mailing_list.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscription_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_request_list_id"), ["list_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subscription_request_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )


def _history() -> None:
    """The history starts with what each subscription already records (its last steps)."""
    for action, column in (
        ("requested", "requested_at"),
        ("confirmed", "confirmed_at"),
        ("withdrawn", "withdrawn_at"),
    ):
        op.execute(
            "INSERT INTO consent_event "
            "(subscription_id, action, at, ip, user_agent, source, consent_version) "
            f"SELECT id, '{action}', {column}, ip, user_agent, source, consent_version "
            f"FROM subscription WHERE {column} IS NOT NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_request_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_subscription_request_list_id"))
    op.drop_table("subscription_request")
    with op.batch_alter_table("pending_confirmation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_confirmation_list_id"))
    op.drop_table("pending_confirmation")
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_event_subscription_id"))
    op.drop_table("consent_event")
