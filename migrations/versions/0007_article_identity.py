"""article identity: (feed, guid), else the canonical URL within the feed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00

A guid was unique across all feeds, so one feed's item could overwrite another feed's
article that used the same guid. It is now unique within its feed. Existing rows satisfy
the new index (they satisfied the stricter old one), so no data changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ix_article_guid")
        batch_op.create_index("ux_article_feed_id_guid", ["feed_id", "guid"], unique=True)


def downgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT guid FROM article WHERE guid IS NOT NULL GROUP BY guid HAVING COUNT(*) > 1"
            )
        )
        .first()
    )
    if shared is not None:
        # The old schema cannot hold two feeds' articles with one guid: say so, change nothing.
        raise RuntimeError(
            f"cannot downgrade: several articles share the guid {shared[0]!r} (one per feed)"
        )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ux_article_feed_id_guid")
        batch_op.create_index("ix_article_guid", ["guid"], unique=True)
