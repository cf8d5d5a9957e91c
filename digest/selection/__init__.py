"""Selection: who is due, their reading window, which articles each gets, grouped into segments.

Modules: `window` (due dates and a reader's window), `queries` (the SQL reads), `ranking`
(ordering candidates, no SQL), `segments` (the `Segment` type and its one builder), `due`
(planning's and the editors' entry points).
"""

from __future__ import annotations

from digest.selection.due import Selection, due_in_batches, due_on, segments_for, select_due
from digest.selection.segments import Issue, PlannedSegment, Segment, build_segment
from digest.selection.window import Due, due_moment, local_due_date, reader_window

__all__ = [
    "Due",
    "Issue",
    "PlannedSegment",
    "Segment",
    "Selection",
    "build_segment",
    "due_in_batches",
    "due_moment",
    "due_on",
    "local_due_date",
    "reader_window",
    "segments_for",
    "select_due",
]
