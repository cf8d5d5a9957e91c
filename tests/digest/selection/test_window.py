"""A reader's window: it ends at the due moment (or now, once that has passed) and starts at
the previous cutoff (or one cadence back)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from digest.selection.window import due_moment, reader_window

DAY = date(2026, 11, 28)
MOMENT = datetime(2026, 11, 28, 4, tzinfo=UTC)  # 07:00 in Riyadh


def test_the_due_moment_is_the_hour_in_the_readers_zone() -> None:
    assert due_moment(DAY, "Asia/Riyadh", 7) == MOMENT
    assert due_moment(DAY, "America/New_York", 7) == MOMENT + timedelta(hours=8)


def test_before_the_hour_the_window_ends_at_it() -> None:
    now = MOMENT - timedelta(hours=5)
    start, end = reader_window(MOMENT, now, None, "daily")
    assert (start, end) == (MOMENT - timedelta(days=1), MOMENT)
    assert end.tzinfo is UTC


def test_after_the_hour_the_window_ends_now() -> None:
    now = MOMENT + timedelta(hours=2)
    assert reader_window(MOMENT, now, None, "weekly") == (now - timedelta(days=7), now)


def test_the_previous_cutoff_starts_the_window_unless_it_is_not_before_the_end() -> None:
    cutoff = MOMENT - timedelta(hours=20)
    assert reader_window(MOMENT, MOMENT, cutoff, "daily") == (cutoff, MOMENT)
    later = MOMENT + timedelta(hours=1)
    assert reader_window(MOMENT, MOMENT, later, "daily") == (MOMENT - timedelta(days=1), MOMENT)
