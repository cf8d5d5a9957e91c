"""Ingestion windows: a first digest looks back one cadence; an edition spans every zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from digest.catalog.windows import edition_window, first_window
from subscribers.models import MailingList


def test_a_first_digest_looks_back_a_day_or_a_week() -> None:
    assert first_window("daily") == timedelta(days=1)
    assert first_window("weekly") == timedelta(days=7)


def test_an_edition_spans_its_day_in_every_time_zone() -> None:
    daily = MailingList(slug="daily", name="النشرة اليومية", cadence="daily")
    start, end = edition_window(daily, date(2026, 11, 28))
    assert start == datetime(2026, 11, 26, 10, tzinfo=UTC)  # a day before 00:00 at UTC+14
    assert end == datetime(2026, 11, 29, 12, tzinfo=UTC)  # midnight ending the day at UTC-12
