"""The inbound record: raw messages (deduplicated by SHA-256), their events, and purging the
raw bytes after `[inbound] keep_days` (the events stay)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from digest.db.tables import INBOUND_EVENT, INBOUND_MESSAGE
from digest.inbound.verdicts import Received, Verdict
from digest.text.controls import clean_line

CHUNK = 500  # values per IN (...) query, rows per purge transaction


@dataclass(frozen=True, slots=True)
class Stored:
    """Where one item's raw bytes are (`message_id`), and whether it came before: the same
    bytes (mail) or the same provider event id (ESP) already stored, now or earlier in the
    batch. `first_event` is the event of its first processing, when known."""

    message_id: int | None
    duplicate: bool = False
    first_event: int | None = None


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def _known_messages(connection: Connection, hashes: list[str]) -> dict[str, int]:
    """sha256 -> inbound_message id, for those already stored."""
    found: dict[str, int] = {}
    for part in _chunks(sorted(set(hashes))):
        rows = connection.execute(
            select(INBOUND_MESSAGE.c.sha256, INBOUND_MESSAGE.c.id).where(
                INBOUND_MESSAGE.c.sha256.in_(part)
            )
        )
        found.update({sha: mid for sha, mid in rows})
    return found


def _known_external(connection: Connection, ids: list[str]) -> dict[str, int]:
    """ESP event id -> inbound_event id, for those already recorded."""
    found: dict[str, int] = {}
    for part in _chunks(sorted(set(ids))):
        rows = connection.execute(
            select(INBOUND_EVENT.c.external_id, INBOUND_EVENT.c.id).where(
                INBOUND_EVENT.c.external_id.in_(part)
            )
        )
        found.update({str(ext): eid for ext, eid in rows})
    return found


def _first_events(connection: Connection, message_ids: set[int]) -> dict[int, int]:
    """inbound_message id -> the first event recorded for it."""
    found: dict[int, int] = {}
    for part in _chunks(sorted(message_ids)):
        rows = connection.execute(
            select(INBOUND_EVENT.c.message_id, INBOUND_EVENT.c.id)
            .where(INBOUND_EVENT.c.message_id.in_(part))
            .order_by(INBOUND_EVENT.c.id.desc())
        )
        found.update({mid: eid for mid, eid in rows})  # the lowest id wins (last written)
    return found


def _message_row(received: Received, sha: str, now: datetime) -> dict[str, Any]:
    return {
        "received_at": received.received_at or now,
        "source": received.source.value,
        "sha256": sha,
        "size": len(received.raw),
        "envelope_from": clean_line(received.envelope_from)[:320],
        "envelope_to": clean_line(", ".join(received.envelope_to))[:2000],
        "raw": received.raw,
    }


def store_messages(
    connection: Connection, items: Sequence[tuple[Received, Verdict]], now: datetime
) -> list[Stored]:
    """Store each new message's raw bytes once, and say which items are duplicates.

    Mail is the same when its bytes are; an ESP event (one with `external_id`) when its
    provider id is, whatever the payload (a provider batches several events in one payload,
    and sends the same event again in another). A unique-key race with a concurrent process
    surfaces as IntegrityError at insert: the caller runs the batch again.
    """
    hashes = [sha256_of(received.raw) for received, _ in items]
    known = _known_messages(connection, hashes)
    externals = _known_external(
        connection, [v.external_id for _, v in items if v.external_id is not None]
    )
    new_rows: dict[str, dict[str, Any]] = {}
    seen_external: set[str] = set()
    seen_mail: set[tuple[str, Verdict]] = set()
    verdicts: list[tuple[str, bool, int | None]] = []  # sha, duplicate, first event if known
    for (received, verdict), sha in zip(items, hashes, strict=True):
        if verdict.external_id is not None:
            ext = verdict.external_id
            duplicate = ext in externals or ext in seen_external
            seen_external.add(ext)
            first = externals.get(ext)
        else:
            # Several events of one payload share its bytes (a provider's event without an
            # id): in a batch only the same bytes read the same way are a duplicate.
            duplicate = sha in known or (sha, verdict) in seen_mail
            seen_mail.add((sha, verdict))
            first = None
        if not duplicate and sha not in known and sha not in new_rows:
            new_rows[sha] = _message_row(received, sha, now)
        verdicts.append((sha, duplicate, first))
    if new_rows:
        rows = list(new_rows.values())
        inserted = connection.execute(
            insert(INBOUND_MESSAGE).returning(INBOUND_MESSAGE.c.id, sort_by_parameter_order=True),
            rows,
        )
        known.update({row["sha256"]: mid for row, (mid,) in zip(rows, inserted, strict=True)})
    earlier = _first_events(
        connection,
        {known[sha] for sha, duplicate, first in verdicts if duplicate and first is None},
    )
    return [
        Stored(known.get(sha), True, first if first is not None else earlier.get(known[sha]))
        if duplicate
        else Stored(known[sha])
        for sha, duplicate, first in verdicts
    ]


def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert inbound_event rows (one statement per batch); their ids, in order."""
    if not rows:
        return []
    result = connection.execute(
        insert(INBOUND_EVENT).returning(INBOUND_EVENT.c.id, sort_by_parameter_order=True),
        list(rows),
    )
    return [eid for (eid,) in result]


def purge_raw(
    engine: Engine,
    before: datetime,
    *,
    chunk: int = CHUNK * 10,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Delete raw inbound messages received before `before`; returns how many went.

    Their events stay (their `message_id` becomes NULL). A chunk per transaction, so that
    SQLite's write lock is never held for long while bounces keep coming in.
    """
    removed = 0
    while not stop():
        oldest = (
            select(INBOUND_MESSAGE.c.id).where(INBOUND_MESSAGE.c.received_at < before).limit(chunk)
        )
        with engine.begin() as connection:
            # Events first, explicitly: SQLite enforces ON DELETE SET NULL only with
            # foreign_keys=ON, which a connection made elsewhere may not have.
            ids = [mid for (mid,) in connection.execute(oldest)]
            if ids:
                connection.execute(
                    INBOUND_EVENT.update()
                    .where(INBOUND_EVENT.c.message_id.in_(ids))
                    .values(message_id=None)
                )
                connection.execute(delete(INBOUND_MESSAGE).where(INBOUND_MESSAGE.c.id.in_(ids)))
        removed += len(ids)
        if len(ids) < chunk:
            break
    return removed
