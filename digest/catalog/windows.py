"""Spans of ingestion time: how far back a first digest looks, and what an edition can hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from subscribers.models import Cadence, MailingList

FIRST_WINDOW = {Cadence.DAILY.value: timedelta(days=1), Cadence.WEEKLY.value: timedelta(days=7)}
_DEFAULT = FIRST_WINDOW[Cadence.DAILY.value]  # read once: planning asks per subscriber


def first_window(cadence: str) -> timedelta:
    """How far back a first digest looks: a day, or a week for weekly lists."""
    return FIRST_WINDOW.get(cadence, _DEFAULT)


def edition_window(mailing_list: MailingList, day: date) -> tuple[datetime, datetime]:
    """Ingestion times an edition's articles can have, whatever the subscriber's time zone:
    from the window before the day's first hour anywhere (UTC+14) to its end (UTC-12)."""
    start = datetime.combine(day, time(0), UTC) - timedelta(hours=14)
    end = datetime.combine(day + timedelta(days=1), time(0), UTC) + timedelta(hours=12)
    return start - first_window(mailing_list.cadence), end
