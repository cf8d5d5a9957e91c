"""audience: case-insensitive addresses (email_key), duplicates merged, subscriber aliases

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00

Subscribers and suppressions get `email_key` (subscribers.validate.email_key: the whole
address case-folded, the domain in punycode), filled from `email`, then unique. Subscribers
whose addresses differed only in case (or in the spelling of an IDN domain) are merged first:

- the earliest row (lowest id) stays, with its address as written; its name, or the first
  non-empty name of the others;
- per list, the most restrictive subscription stays with its consent record
  (unsubscribed > unconfirmed > active; on a tie the earliest row's), the others go;
- deliveries move to the kept row; where both got the same edition, the kept row's delivery
  stays, the other's events move to it and the other delivery goes;
- events move; each merged id becomes an alias of the kept row (`subscriber_alias`), so
  unsubscribe links already mailed with the old id still reach the person.

Duplicate suppressions keep the earliest row; the note records the addresses merged into it.
A suppression matches by key, so a suppressed spelling suppresses every spelling.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from digest.clock import utcnow
from subscribers.validate import email_key

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lower is more restrictive: what a merge keeps.
_RANK = {"unsubscribed": 0, "unconfirmed": 1, "active": 2}
# A merged suppression keeps the most severe reason: `unsuppress --since` lifts only hard
# bounces, so a complaint merged into a bounce must never become liftable in bulk.
_SEVERITY = {"complaint": 0, "manual": 1, "hard_bounce": 2}
_ALIAS = sa.table(
    "subscriber_alias",
    sa.column("id", sa.Integer()),
    sa.column("subscriber_id", sa.Integer()),
    sa.column("email", sa.String()),
    sa.column("merged_at", sqlmodel.sql.sqltypes.UTCDateTime()),
)


def upgrade() -> None:
    op.create_table(
        "subscriber_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("merged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subscriber_alias", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriber_alias_subscriber_id"), ["subscriber_id"], unique=False
        )
    connection = op.get_bind()
    for name in ("subscriber", "suppression"):
        _add_key_column(connection, name)
    keys = _fill_keys(connection, "subscriber")
    for group in _duplicates(keys):
        _merge_subscribers(connection, group)
    for group in _duplicates(_fill_keys(connection, "suppression")):
        _merge_suppressions(connection, group)
    for name in ("subscriber", "suppression"):
        if connection.dialect.name != "sqlite":
            op.alter_column(name, "email_key", nullable=False)
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{name}_email_key"), ["email_key"], unique=True)


def _add_key_column(connection: sa.Connection, name: str) -> None:
    if connection.dialect.name == "sqlite":
        # SQLite cannot make a column NOT NULL without copying the table, and dropping the
        # old copy would cascade into every subscription: the column comes NOT NULL with an
        # empty default instead (every writer gives the key; the unique index catches one
        # that does not).
        column = sa.Column("email_key", sa.String(320), nullable=False, server_default="")
    else:
        column = sa.Column("email_key", sa.String(320), nullable=True)
    op.add_column(name, column)


def _fill_keys(connection: sa.Connection, name: str) -> dict[int, str]:
    """Every row's key, written to the table; returns id -> key.

    SQL's lower() is the key of an ASCII address (both databases fold ASCII alike), so one
    statement keys nearly every row; only the others (IDN, non-ASCII) are written one by one.
    """
    connection.execute(sa.text(f"UPDATE {name} SET email_key = lower(email)"))
    rows = connection.execute(sa.text(f"SELECT id, email, email_key FROM {name}")).all()
    keys = {row_id: email_key(email) for row_id, email, _stored in rows}
    fixes = [
        {"key": keys[row_id], "id": row_id}
        for row_id, _email, stored in rows
        if keys[row_id] != stored
    ]
    if fixes:
        connection.execute(sa.text(f"UPDATE {name} SET email_key = :key WHERE id = :id"), fixes)
    return keys


def _duplicates(keys: dict[int, str]) -> list[list[int]]:
    """Groups of ids sharing a key, each in id order (the earliest first)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row_id in sorted(keys):
        groups[keys[row_id]].append(row_id)
    return [ids for ids in groups.values() if len(ids) > 1]


def _merge_subscribers(connection: sa.Connection, ids: list[int]) -> None:
    keep, others = ids[0], ids[1:]
    _merge_subscriptions(connection, keep, ids)
    for other in others:
        _move_deliveries(connection, keep, other)
        connection.execute(
            sa.text("UPDATE event SET subscriber_id = :keep WHERE subscriber_id = :other"),
            {"keep": keep, "other": other},
        )
    rows: dict[int, tuple[str, str]] = {
        row_id: (email, name or "")
        for row_id, email, name in connection.execute(
            _in("SELECT id, email, name FROM subscriber WHERE id IN :ids"), {"ids": ids}
        )
    }
    name = next((rows[i][1] for i in ids if rows[i][1].strip()), "")
    connection.execute(
        sa.text("UPDATE subscriber SET name = :name WHERE id = :keep"), {"name": name, "keep": keep}
    )
    emails = {o: rows[o][0] for o in others}
    now = utcnow()
    connection.execute(
        _ALIAS.insert(),
        [{"id": o, "subscriber_id": keep, "email": emails[o], "merged_at": now} for o in others],
    )
    # Aliases of a merged id (none today) follow it to the kept row.
    connection.execute(
        _ALIAS.update().where(_ALIAS.c.subscriber_id.in_(others)).values(subscriber_id=keep)
    )
    _delete(connection, "subscriber", "id", others)


def _merge_subscriptions(connection: sa.Connection, keep: int, ids: list[int]) -> None:
    """Per list, the most restrictive subscription of the group stays, moved to `keep`."""
    rows = connection.execute(
        _in(
            "SELECT id, subscriber_id, list_id, status FROM subscription "
            "WHERE subscriber_id IN :ids"
        ),
        {"ids": ids},
    ).all()
    by_list: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for sid, subscriber_id, list_id, status in rows:
        by_list[list_id].append((sid, subscriber_id, status))
    for candidates in by_list.values():
        candidates.sort(key=lambda c: (_RANK.get(c[2], 0), c[1] != keep, c[0]))
        (survivor, owner, _status), losers = candidates[0], [c[0] for c in candidates[1:]]
        _delete(connection, "subscription_topic", "subscription_id", losers)
        _delete(connection, "subscription", "id", losers)
        if owner != keep:
            connection.execute(
                sa.text("UPDATE subscription SET subscriber_id = :keep WHERE id = :sid"),
                {"keep": keep, "sid": survivor},
            )


def _move_deliveries(connection: sa.Connection, keep: int, other: int) -> None:
    """`other`'s deliveries go to `keep`; one edition mailed to both keeps `keep`'s row."""
    clashes = connection.execute(
        sa.text(
            "SELECT o.id, k.id FROM delivery o JOIN delivery k ON k.edition_id = o.edition_id "
            "WHERE o.subscriber_id = :other AND k.subscriber_id = :keep"
        ),
        {"other": other, "keep": keep},
    ).all()
    for gone, kept in clashes:
        connection.execute(
            sa.text("UPDATE event SET delivery_id = :kept WHERE delivery_id = :gone"),
            {"kept": kept, "gone": gone},
        )
    _delete(connection, "delivery", "id", [gone for gone, _kept in clashes])
    connection.execute(
        sa.text("UPDATE delivery SET subscriber_id = :keep WHERE subscriber_id = :other"),
        {"keep": keep, "other": other},
    )


def _merge_suppressions(connection: sa.Connection, ids: list[int]) -> None:
    keep, others = ids[0], ids[1:]
    query = _in("SELECT id, email, reason, note FROM suppression WHERE id IN :ids")
    rows = {
        row_id: (email, reason, note or "")
        for row_id, email, reason, note in connection.execute(query, {"ids": ids})
    }
    merged = "; ".join(f"{rows[o][0]} ({rows[o][1]})" for o in others)
    note = "; ".join(part for part in (rows[keep][2], f"merged: {merged}") if part)
    reason = min((rows[i][1] for i in ids), key=lambda r: _SEVERITY.get(r, -1))
    _delete(connection, "suppression", "id", others)
    connection.execute(
        sa.text("UPDATE suppression SET note = :note, reason = :reason WHERE id = :keep"),
        {"note": note, "reason": reason, "keep": keep},
    )


def _in(sql: str) -> sa.TextClause:
    """`sql` with `:ids` bound to a list (IN on both databases)."""
    return sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))


def _delete(connection: sa.Connection, name: str, column: str, ids: list[int]) -> None:
    if ids:
        connection.execute(_in(f"DELETE FROM {name} WHERE {column} IN :ids"), {"ids": ids})


def downgrade() -> None:
    # Merged rows are not split again: the aliases go, the kept rows stay. Plain ALTERs (not
    # a batch copy): on SQLite dropping a copied table would cascade into its children.
    for name in ("suppression", "subscriber"):
        op.drop_index(op.f(f"ix_{name}_email_key"), table_name=name)
        op.drop_column(name, "email_key")
    op.drop_index(op.f("ix_subscriber_alias_subscriber_id"), table_name="subscriber_alias")
    op.drop_table("subscriber_alias")
