"""CSV import of subscribers: validate every row, reject bad ones with a reason, upsert in batches.

Format: `email,name,topics,timezone,hour` (+ optional `locale`), UTF-8 with or without BOM;
topics are slugs (or Arabic names) separated by `|` or `،`. Each batch is one transaction:
a batch either lands whole or not at all. Rejected rows are written to the rejects file as
they come (memory does not grow with them); the report keeps the first few.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, select

from digest.db.bulk import DriverSql
from digest.errors import DigestError, InvalidInput
from subscribers.csv_cells import LastLine, oversized_field, restore, write_row
from subscribers.import_batches import BatchCounts, BatchWriter, Row
from subscribers.models import MailingList
from subscribers.people import clean_name
from subscribers.tables import LIST_TOPIC
from subscribers.validate import check_locale, check_timezone, normalize_address, parse_hour

__all__ = ["CsvError", "ImportOptions", "ImportReport", "Reject", "Row", "import_csv"]

COLUMNS = ("email", "name", "topics", "timezone", "hour", "locale")
TOPIC_SEPARATORS = ("|", "،")
BATCH = 2000
KEPT_REJECTS = 200  # rejects the report holds (the file holds them all)
_TOPIC_CACHE = 4096  # distinct topic spellings remembered (a hostile file has one per row)


class CsvError(DigestError):
    """The file as a whole cannot be imported (encoding, header)."""


@dataclass(frozen=True)
class Reject:
    line: int
    email: str
    reason: str
    raw: Mapping[str, str]


@dataclass
class ImportReport:
    """What an import did. `rejected`: bad rows; suppressed and withdrawn addresses are
    skipped (and written to the rejects file with the reason) but not counted as bad."""

    rows: int = 0
    created: int = 0
    activated: int = 0
    updated: int = 0
    suppressed: int = 0
    withdrawn: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)  # the first KEPT_REJECTS, in order
    rejects_written: int = 0  # rows written to the rejects file (bad and skipped)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    def add(self, counts: BatchCounts) -> None:
        self.created += counts.created
        self.activated += counts.activated
        self.updated += counts.updated
        self.suppressed += counts.suppressed
        self.withdrawn += counts.withdrawn

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "activated": self.activated,
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
    rejects_path: Path | None = None  # where rejected rows go, as they come (None: nowhere)
    smtputf8: bool = False  # the relay takes SMTPUTF8 mail: non-ASCII local parts accepted


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
    """Turns CSV records into validated rows or rejects; remembers addresses seen in the file."""

    def __init__(
        self, topics: Mapping[str, int], offered: set[int], options: ImportOptions
    ) -> None:
        self.topics = topics
        self.offered = offered
        self.options = options
        self.seen: dict[str, int] = {}  # key -> first line
        # Files repeat the same few topic combinations: resolve each spelling once.
        self._topic_cache: dict[str, tuple[int, ...] | str] = {}

    def parse(self, line: int, record: Mapping[str, str]) -> Row | Reject:
        raw_email = restore((record.get("email") or "").strip())
        try:
            email, key = normalize_address(raw_email, smtputf8=self.options.smtputf8)
            if key in self.seen:
                raise InvalidInput(f"duplicate of line {self.seen[key]}")
            topic_ids = self._topics(restore(record.get("topics") or ""))
            timezone = (record.get("timezone") or "").strip() or self.options.default_timezone
            check_timezone(timezone)
            hour_text = (record.get("hour") or "").strip()
            hour = parse_hour(hour_text) if hour_text else None
            locale = (record.get("locale") or "").strip() or self.options.default_locale
            check_locale(locale)
        except InvalidInput as exc:
            return Reject(line, raw_email, str(exc), record)
        self.seen[key] = line
        name = clean_name(restore(record.get("name") or ""))
        return Row(line, email, key, name, topic_ids, timezone, hour, locale)

    def _topics(self, text: str) -> tuple[int, ...]:
        cached = self._topic_cache.get(text)
        if cached is None:
            try:
                cached = self._resolve_topics(text)
            except InvalidInput as exc:
                cached = str(exc)
            if len(self._topic_cache) < _TOPIC_CACHE:
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


# (line, record) or (line, reason) for a row the csv module refused.
Record = tuple[int, dict[str, str] | str]


def read_records(path: Path) -> tuple[list[str], Iterator[Record]]:
    """The normalised header and an iterator of (line number, record); a row the csv module
    refuses (a field over its size limit) comes as (line number, reason) and the rest goes on."""
    handle = path.open(encoding="utf-8-sig", newline="")
    lines = LastLine(handle)
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        handle.close()
        problem = "is empty" if isinstance(exc, StopIteration) else f"has a bad header ({exc})"
        raise CsvError(f"{path}: the file {problem}; it needs a header line with 'email'") from None
    if "email" not in header:
        handle.close()
        raise CsvError(
            f"{path}: no 'email' column in the header (found: {', '.join(header) or 'nothing'}); "
            f"expected {','.join(COLUMNS[:5])}"
        )

    def records() -> Iterator[Record]:
        with handle:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    which = oversized_field(lines.line, header)
                    yield reader.line_num, f"unreadable row: {which}: {exc}"
                    continue
                if not any(v.strip() for v in values):
                    continue
                yield reader.line_num, dict(zip(header, values, strict=False))

    return header, records()


class RejectsFile:
    """Rejected and skipped rows, written as they come; the file is created on the first."""

    def __init__(self, path: Path | None, report: ImportReport) -> None:
        self.path = path
        self.report = report
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def add(self, reject: Reject, *, bad: bool = True) -> None:
        report = self.report
        if bad:
            report.rejected += 1
        if len(report.rejects) < KEPT_REJECTS:
            report.rejects.append(reject)
        if self.path is None:
            return
        if self._writer is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["line", "reason", *COLUMNS])
        _write_reject(self._writer, reject)
        report.rejects_written += 1

    def skip(self, line: int, email: str, reason: str) -> None:
        self.add(Reject(line, email, reason, {}), bad=False)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


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
    rejects = RejectsFile(options.rejects_path, report)
    batch: list[Row] = []
    try:
        for line, record in records:
            report.rows += 1
            parsed = (
                Reject(line, "", record, {})
                if isinstance(record, str)
                else parser.parse(line, record)
            )
            if isinstance(parsed, Reject):
                rejects.add(parsed)
            else:
                batch.append(parsed)
            if len(batch) >= options.batch_size:
                _flush(engine, batch, mailing_list.id, options, rejects)
                batch = []
            if progress is not None and report.rows % 500 == 0:
                progress(report.rows)
        if batch:
            _flush(engine, batch, mailing_list.id, options, rejects)
    finally:
        rejects.close()
    if progress is not None:
        progress(report.rows)
    report.rejects.sort(key=lambda r: r.line)
    return report


def _flush(
    engine: Engine, rows: list[Row], list_id: int, options: ImportOptions, rejects: RejectsFile
) -> None:
    with engine.begin() as connection:
        writer = BatchWriter(
            DriverSql(connection), list_id, options.source, options.consent_version, rejects.skip
        )
        counts = writer.write(rows)
        if options.dry_run:
            connection.rollback()
    rejects.report.add(counts)


def _write_reject(writer: Any, reject: Reject) -> None:
    raw = dict(reject.raw) or {"email": reject.email}
    write_row(writer, [reject.line, reject.reason, *(raw.get(c, "") for c in COLUMNS)])


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """Rejected rows with their line number and reason, then the row as it was (cells that a
    spreadsheet would run as formulas are neutralised)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason", *COLUMNS])
        for reject in rejects:
            _write_reject(writer, reject)
