"""inbound: bounces, complaints and mailto unsubscribes that come back, and their raw messages

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "inbound_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("source", _TEXT(length=16), nullable=False),
        sa.Column("sha256", _TEXT(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("envelope_from", _TEXT(length=320), nullable=False),
        sa.Column("envelope_to", _TEXT(length=2000), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_message_received_at"), ["received_at"])
        batch_op.create_index(batch_op.f("ix_inbound_message_sha256"), ["sha256"], unique=True)
    op.create_table(
        "inbound_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("source", _TEXT(length=16), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("address", _TEXT(length=320), nullable=False),
        sa.Column("email_key", _TEXT(length=320), nullable=False),
        sa.Column("status", _TEXT(length=16), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("diagnostic", _TEXT(length=1000), nullable=False),
        sa.Column("reason", _TEXT(length=300), nullable=False),
        sa.Column("action", _TEXT(length=100), nullable=False),
        sa.Column("external_id", _TEXT(length=255), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["inbound_message.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        for name in ("received_at", "delivery_id", "subscriber_id", "edition_id", "email_key"):
            batch_op.create_index(batch_op.f(f"ix_inbound_event_{name}"), [name])
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_message_id"), ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_message_id"))
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        for name in ("email_key", "edition_id", "subscriber_id", "delivery_id", "received_at"):
            batch_op.drop_index(batch_op.f(f"ix_inbound_event_{name}"))
    op.drop_table("inbound_event")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_message_sha256"))
        batch_op.drop_index(batch_op.f("ix_inbound_message_received_at"))
    op.drop_table("inbound_message")
