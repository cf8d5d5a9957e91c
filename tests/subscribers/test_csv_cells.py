"""Spreadsheet-safe cells: formulas neutralised in output files, read back as they were."""

from __future__ import annotations

import csv

from hypothesis import given
from hypothesis import strategies as st

from subscribers.csv_cells import FORMULA_STARTS, neutralise, oversized_field, restore


def test_formula_cells_get_a_leading_quote() -> None:
    for cell in ("=1+1", "+966500000000", "-news@example.org", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    for cell in ("reem@example.org", "ريم", "", "'quoted", "1+1"):
        assert neutralise(cell) == cell


@given(st.text(st.sampled_from([*FORMULA_STARTS, "'", "a", "ب", " "]), max_size=6))
def test_restore_undoes_neutralise(cell: str) -> None:
    assert not neutralise(cell).startswith(FORMULA_STARTS)
    if not (cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS)):
        assert restore(neutralise(cell)) == cell


def test_oversized_field_names_the_column() -> None:
    big = "x" * (csv.field_size_limit() + 1)
    assert oversized_field(f"a@example.org,{big},,\n", ["email", "name"]) == "column 'name'"
    # A quoted field spanning lines: its last line alone does not say which column.
    assert oversized_field('end of it",x\n', ["email", "name"]) == "a field"
    assert csv.field_size_limit() < len(big)  # the process-wide limit is put back
