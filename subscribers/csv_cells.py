"""Spreadsheet-safe CSV cells: formulas neutralised on the way out, restored on the way in."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection):
# `=HYPERLINK(...)` in a subscriber's name must stay text when an admin opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def neutralise(cell: str) -> str:
    """`cell` made inert for spreadsheets: a leading `'` before a formula character."""
    return _QUOTE + cell if cell.startswith(FORMULA_STARTS) else cell


def restore(cell: str) -> str:
    """The inverse of `neutralise` for files we wrote: imports read back their exports (an
    address such as `-news@example.org` is exported as `'-news@example.org`)."""
    if cell.startswith(_QUOTE) and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


class RowWriter(Protocol):
    def writerow(self, row: Iterable[Any], /) -> Any: ...


def write_row(writer: RowWriter, row: Iterable[object]) -> None:
    """One row of an output file (export, rejects), every cell neutralised."""
    writer.writerow([neutralise(str(cell)) for cell in row])


class LastLine:
    """A line iterator for csv.reader that remembers the last physical line it gave out,
    so that a row the reader refuses (a field over its size limit) can be described."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines: Iterator[str] = iter(lines)
        self.line = ""

    def __iter__(self) -> LastLine:
        return self

    def __next__(self) -> str:
        self.line = next(self._lines)
        return self.line


def oversized_field(line: str, header: Sequence[str]) -> str:
    """Which column of `line` is over the csv module's field size limit ("a field" when the
    physical line alone does not tell: a quoted field spanning lines)."""
    limit = csv.field_size_limit()
    # The limit is process-wide: raised for this one parse only (imports run in the CLI).
    try:
        csv.field_size_limit(max(limit, len(line) + 1))  # this one line is already in memory
        fields = next(csv.reader([line]), [])
    except csv.Error:
        fields = []
    finally:
        csv.field_size_limit(limit)
    for index, value in enumerate(fields):
        if len(value) > limit:
            return f"column {header[index]!r}" if index < len(header) else f"column {index + 1}"
    return "a field"
