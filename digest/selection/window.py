"""A reader's window: when their digest of a local date falls due, and the span of ingestion
time it covers. Planning (`select_due`), editors' projections (`due_on`) and preview all
take their windows from `reader_window`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from digest.catalog.windows import first_window


@dataclass(frozen=True)
class Due:
    """A subscription whose digest is due: who, for which local date, over which window."""

    subscription_id: int
    subscriber_id: int
    email: str
    name: str
    locale: str
    topic_ids: tuple[int, ...]
    local_date: date
    window_start: datetime
    window_end: datetime


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Cached: a list's subscribers share a few (time zone, hour) pairs, and planning asks for each
# of a million subscribers.
@lru_cache(maxsize=4096)
def local_due_date(now: datetime, timezone: str, hour: int, day: date | None = None) -> date | None:
    """The local date whose digest is due at `now`, or None when the send hour has not come.

    `day` asks for one date's edition (catching up); otherwise the subscriber's local today.
    """
    local_day = day or now.astimezone(zone(timezone)).date()
    return local_day if due_moment(local_day, timezone, hour) <= now else None


@lru_cache(maxsize=4096)
def due_moment(day: date, timezone: str, hour: int) -> datetime:
    """When `day`'s digest falls due: `hour`:00 local time (in a DST gap: standard time)."""
    return datetime.combine(day, time(hour), tzinfo=zone(timezone))


def reader_window(
    moment: datetime, now: datetime, cutoff: datetime | None, cadence: str
) -> tuple[datetime, datetime]:
    """(start, end] in UTC of the digest due at `moment`, as planning sees it at `now`.

    It ends at its due moment, or now once that has passed (what sending at `now` covers);
    it starts at the cutoff of the reader's previous digest, or one cadence before its end
    for a first digest (or a cutoff that is not before the end).
    """
    end = now if moment <= now else moment
    if end.tzinfo is not UTC:  # most often `now`, already in UTC: no conversion per reader
        end = end.astimezone(UTC)
    start = cutoff if cutoff is not None and cutoff < end else end - first_window(cadence)
    return start, end
