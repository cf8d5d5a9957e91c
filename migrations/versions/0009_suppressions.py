"""suppressions: SMTP code and the run that suppressed, for undo

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Hard bounces used to keep their reply only in `note` ("550 5.1.1 no such user").
_NOTE = re.compile(r"\s*(\d{3})(?:\s+([245]\.\d{1,3}\.\d{1,3})\b)?")


def upgrade() -> None:
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.add_column(sa.Column("smtp_code", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("enhanced", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("delivery_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("edition_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("list_id", sa.Integer(), nullable=True))

    op.create_table(
        "lifted_suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("email_key", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("enhanced", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("suppressed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lifted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lifted_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("why", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lifted_suppression", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lifted_suppression_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lifted_suppression_email_key"), ["email_key"], unique=False
        )

    _backfill_codes()


def _backfill_codes() -> None:
    """Earlier hard bounces: read the reply code back from the note, so `--reason-code`
    finds them too."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, note FROM suppression WHERE reason = 'hard_bounce'")
    ).all()
    updates = []
    for row_id, note in rows:
        match = _NOTE.match(note or "")
        if match is not None:
            updates.append({"id": row_id, "code": int(match.group(1)), "enhanced": match.group(2)})
    if updates:
        connection.execute(
            sa.text(
                "UPDATE suppression SET smtp_code = :code, enhanced = :enhanced WHERE id = :id"
            ),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("lifted_suppression", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifted_suppression_email_key"))
        batch_op.drop_index(batch_op.f("ix_lifted_suppression_email"))
    op.drop_table("lifted_suppression")
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_column("list_id")
        batch_op.drop_column("edition_id")
        batch_op.drop_column("delivery_id")
        batch_op.drop_column("enhanced")
        batch_op.drop_column("smtp_code")
