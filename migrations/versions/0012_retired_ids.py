"""audience: ids of erased subscribers are never handed out again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No foreign key: the subscriber row is gone by design. Ids erased before this revision
    # are not known; only erasures from now on are kept out of reuse.
    op.create_table(
        "retired_subscriber_id",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("retired_subscriber_id")
