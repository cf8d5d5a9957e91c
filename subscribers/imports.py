"""CSV import of subscribers: validate every row, reject bad ones with a reason, upsert in batches.

Format: `email,name,topics,timezone,hour` (+ optional `locale`), UTF-8 with or without BOM;
topics are slugs (or Arabic names) separated by `|` or `،`. Each batch is one transaction:
a batch either lands whole or not at all.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from digest.clock import utcnow
from digest.db.bulk import DriverSql
from digest.errors import DigestError, InvalidInput
from subscribers.models import (
    MailingList,
    SubscriptionStatus,
)
from subscribers.tables import LIST_TOPIC, SUBSCRIBER
from subscribers.validate import check_locale, check_timezone, normalize_email, parse_hour

COLUMNS = ("email", "name", "topics", "timezone", "hour", "locale")
TOPIC_SEPARATORS = ("|", "،")
BATCH = 2000


class CsvError(DigestError):
    """The file as a whole cannot be imported (encoding, header)."""


@dataclass(frozen=True)
class Reject:
    line: int
    email: str
    reason: str
    raw: Mapping[str, str]


class Row(NamedTuple):  # a NamedTuple: built 100k times per import, 3x cheaper than a dataclass
    line: int
    email: str
    name: str
    topic_ids: tuple[int, ...]
    timezone: str
    hour: int | None
    locale: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    suppressed: int = 0
    withdrawn: int = 0
    rejects: list[Reject] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def rejected(self) -> int:
        return sum(1 for r in self.rejects if not r.reason.startswith(("suppressed", "withdrawn")))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "suppressed": self.suppressed,
            "withdrawn": self.withdrawn,
            "rejected": self.rejected,
            "dry_run": self.dry_run,
            "ignored_columns": self.ignored_columns,
        }


@dataclass(frozen=True)
class ImportOptions:
    default_timezone: str
    default_locale: str = "ar"
    source: str = "import"
    consent_version: str = "1"
    dry_run: bool = False
    batch_size: int = BATCH


def check_utf8(path: Path) -> int:
    """Decode the whole file once without keeping it; returns its line count.

    Done before anything is written so that a non-UTF-8 file leaves the database untouched.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise CsvError(
                    f"{path}: not UTF-8 (byte {offset + exc.start}, line {line}): "
                    "save the file as UTF-8 and import again"
                ) from None
            lines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvError(f"{path}: not UTF-8 (truncated character at the end)") from None
    return lines


class RowParser:
    """Turns CSV records into validated rows or rejects; remembers emails seen in the file."""

    def __init__(
        self, topics: Mapping[str, int], offered: set[int], options: ImportOptions
    ) -> None:
        self.topics = topics
        self.offered = offered
        self.options = options
        self.seen: dict[str, int] = {}
        # Files repeat the same few topic combinations: resolve each spelling once.
        self._topic_cache: dict[str, tuple[int, ...] | str] = {}

    def parse(self, line: int, record: Mapping[str, str]) -> Row | Reject:
        raw_email = (record.get("email") or "").strip()
        try:
            email = normalize_email(raw_email)
            if email in self.seen:
                raise InvalidInput(f"duplicate of line {self.seen[email]}")
            topic_ids = self._topics(record.get("topics") or "")
            timezone = (record.get("timezone") or "").strip() or self.options.default_timezone
            check_timezone(timezone)
            hour_text = (record.get("hour") or "").strip()
            hour = parse_hour(hour_text) if hour_text else None
            locale = (record.get("locale") or "").strip() or self.options.default_locale
            check_locale(locale)
        except InvalidInput as exc:
            return Reject(line, raw_email, str(exc), record)
        self.seen[email] = line
        name = " ".join((record.get("name") or "").split())
        return Row(line, email, name, topic_ids, timezone, hour, locale)

    def _topics(self, text: str) -> tuple[int, ...]:
        cached = self._topic_cache.get(text)
        if cached is None:
            try:
                cached = self._resolve_topics(text)
            except InvalidInput as exc:
                cached = str(exc)
            self._topic_cache[text] = cached
        if isinstance(cached, str):
            raise InvalidInput(cached)
        return cached

    def _resolve_topics(self, text: str) -> tuple[int, ...]:
        for separator in TOPIC_SEPARATORS[1:]:
            text = text.replace(separator, TOPIC_SEPARATORS[0])
        ids: list[int] = []
        for part in (p.strip() for p in text.split(TOPIC_SEPARATORS[0])):
            if not part:
                continue
            topic_id = self.topics.get(part)
            if topic_id is None:
                raise InvalidInput(f"unknown topic {part!r}")
            if self.offered and topic_id not in self.offered:
                raise InvalidInput(f"topic {part!r} is not offered by this list")
            if topic_id not in ids:
                ids.append(topic_id)
        return tuple(ids)


def read_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The normalised header and an iterator of (line number, record)."""
    handle = path.open(encoding="utf-8-sig", newline="")
    reader = csv.reader(handle)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        handle.close()
        raise CsvError(f"{path}: the file is empty; it needs a header line with 'email'") from None
    if "email" not in header:
        handle.close()
        raise CsvError(
            f"{path}: no 'email' column in the header (found: {', '.join(header) or 'nothing'}); "
            f"expected {','.join(COLUMNS[:5])}"
        )

    def records() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                yield reader.line_num, dict(zip(header, values, strict=False))

    return header, records()


def import_csv(
    engine: Engine,
    path: Path,
    mailing_list: MailingList,
    topics: Mapping[str, int],
    options: ImportOptions,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `path` into `mailing_list`; `topics` maps slugs and names to topic ids."""
    check_utf8(path)
    header, records = read_records(path)
    report = ImportReport(dry_run=options.dry_run)
    report.ignored_columns = [h for h in header if h not in COLUMNS]
    assert mailing_list.id is not None
    with engine.connect() as connection:
        offered = set(
            connection.execute(
                select(LIST_TOPIC.c.topic_id).where(LIST_TOPIC.c.list_id == mailing_list.id)
            ).scalars()
        )
    parser = RowParser(topics, offered, options)
    batch: list[Row] = []
    for line, record in records:
        report.rows += 1
        parsed = parser.parse(line, record)
        if isinstance(parsed, Reject):
            report.rejects.append(parsed)
        else:
            batch.append(parsed)
        if len(batch) >= options.batch_size:
            _flush(engine, batch, mailing_list.id, options, report)
            batch = []
        if progress is not None and report.rows % 500 == 0:
            progress(report.rows)
    if batch:
        _flush(engine, batch, mailing_list.id, options, report)
    if progress is not None:
        progress(report.rows)
    report.rejects.sort(key=lambda r: r.line)
    return report


def _flush(
    engine: Engine, rows: list[Row], list_id: int, options: ImportOptions, report: ImportReport
) -> None:
    with engine.begin() as connection:
        _BatchWriter(DriverSql(connection), list_id, options, report).write(rows)
        if options.dry_run:
            connection.rollback()


@dataclass(frozen=True)
class _Known:
    """What the database already holds for the addresses of one batch."""

    suppressed: Mapping[str, int]  # email -> 1
    subscriber_ids: Mapping[str, int]  # email -> subscriber id
    subscriptions: Mapping[int, tuple[int, str]]  # subscriber id -> (subscription id, status)


@dataclass(frozen=True)
class _BatchWriter:
    """Writes one batch of rows for one list, in the caller's transaction."""

    sql: DriverSql
    list_id: int
    options: ImportOptions
    report: ImportReport

    def write(self, rows: list[Row]) -> None:
        known = self._known(rows)
        keep = self._screen(rows, known)
        if not keep:
            return
        now = self.sql.stamp(SUBSCRIBER.c.created_at, utcnow())
        ids = self._upsert_subscribers(keep, known, now)
        subscription_ids = self._upsert_subscriptions(keep, ids, known, now)
        self.sql.many(
            "INSERT INTO subscription_topic (subscription_id, topic_id, position) VALUES (?, ?, ?)",
            [
                (subscription_ids[row.email], topic_id, position)
                for row in keep
                for position, topic_id in enumerate(row.topic_ids)
            ],
        )

    def _known(self, rows: list[Row]) -> _Known:
        sql = self.sql
        emails = [r.email for r in rows]
        suppressed = sql.pairs("SELECT email, 1 FROM suppression WHERE email IN ({in})", emails)
        ids = sql.pairs("SELECT email, id FROM subscriber WHERE email IN ({in})", emails)
        subscriptions: dict[int, tuple[int, str]] = {}
        if ids:
            text = (
                "SELECT subscriber_id, id, status FROM subscription "
                f"WHERE list_id = {sql.mark} AND subscriber_id IN ({sql.marks(len(ids))})"
            )
            for subscriber_id, sid, status in sql.connection.exec_driver_sql(
                text, (self.list_id, *ids.values())
            ):
                subscriptions[subscriber_id] = (sid, status)
        return _Known(suppressed, ids, subscriptions)

    def _screen(self, rows: list[Row], known: _Known) -> list[Row]:
        """The rows that may be written; suppressed and withdrawn addresses are reported."""
        report = self.report
        keep: list[Row] = []
        for row in rows:
            subscription = known.subscriptions.get(known.subscriber_ids.get(row.email, -1))
            if row.email in known.suppressed:
                report.suppressed += 1
                report.rejects.append(
                    Reject(row.line, row.email, "suppressed: this address must not be mailed", {})
                )
            elif subscription is not None and subscription[1] == SubscriptionStatus.UNSUBSCRIBED:
                report.withdrawn += 1
                report.rejects.append(
                    Reject(
                        row.line, row.email, "withdrawn: unsubscribed from this list earlier", {}
                    )
                )
            else:
                keep.append(row)
        return keep

    def _upsert_subscribers(self, keep: list[Row], known: _Known, now: Any) -> dict[str, int]:
        """Insert or update the subscribers; their ids by email."""
        sql = self.sql
        sql.many(
            "INSERT INTO subscriber (email, name, locale, timezone, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET "
            # An empty name in the file keeps the name already known.
            "name = COALESCE(NULLIF(excluded.name, ''), subscriber.name), "
            "locale = excluded.locale, timezone = excluded.timezone",
            [(r.email, r.name, r.locale, r.timezone, now) for r in keep],
        )
        fresh = [r.email for r in keep if r.email not in known.subscriber_ids]
        added = sql.pairs("SELECT email, id FROM subscriber WHERE email IN ({in})", fresh)
        return {**known.subscriber_ids, **added}

    def _upsert_subscriptions(
        self, keep: list[Row], ids: Mapping[str, int], known: _Known, now: Any
    ) -> dict[str, int]:
        """New subscriptions inserted, known ones given the new hour and no topics; the
        subscription ids by email."""
        sql, existing = self.sql, known.subscriptions
        new_rows = [r for r in keep if ids[r.email] not in existing]
        old_rows = [r for r in keep if ids[r.email] in existing]
        self.report.created += len(new_rows)
        self.report.updated += len(old_rows)
        sql.many(
            "INSERT INTO subscription (subscriber_id, list_id, status, send_hour, requested_at, "
            "confirmed_at, source, consent_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    ids[r.email],
                    self.list_id,
                    SubscriptionStatus.ACTIVE.value,
                    r.hour,
                    now,
                    now,
                    self.options.source,
                    self.options.consent_version,
                )
                for r in new_rows
            ],
        )
        old_sids = [existing[ids[r.email]][0] for r in old_rows]
        sql.many(
            "UPDATE subscription SET send_hour = ? WHERE id = ?",
            [(r.hour, sid) for r, sid in zip(old_rows, old_sids, strict=True)],
        )
        if old_sids:
            sql.connection.exec_driver_sql(
                "DELETE FROM subscription_topic "
                f"WHERE subscription_id IN ({sql.marks(len(old_sids))})",
                tuple(old_sids),
            )
        new_sids = sql.pairs(
            "SELECT subscriber_id, id FROM subscription "
            "WHERE list_id = ? AND subscriber_id IN ({in})",
            [ids[r.email] for r in new_rows],
            self.list_id,
        )
        sids = {r.email: new_sids[ids[r.email]] for r in new_rows}
        sids.update({r.email: sid for r, sid in zip(old_rows, old_sids, strict=True)})
        return sids


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """Rejected rows with their line number and reason, then the row as it was."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason", *COLUMNS])
        for reject in rejects:
            raw = dict(reject.raw) or {"email": reject.email}
            writer.writerow([reject.line, reject.reason, *(raw.get(c, "") for c in COLUMNS)])
