"""Disclosure control: nothing published below 8, and no suppressed cell recoverable from totals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.publish.disclosure import THRESHOLD, protect_line, protect_table, public_measures, round5

counts = st.integers(0, 200)


@st.composite
def tables(draw: st.DrawFn) -> dict[tuple[int, int], int]:
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return {(r, c): draw(counts) for r in range(rows) for c in range(cols)}


def _published_values(result: dict) -> list[int]:
    values = list(result["cells"].values()) + list(result.get("rows", {}).values())
    values += [*list(result.get("columns", {}).values()), result["total"]]
    return [v for v in values if v is not None]


@settings(max_examples=300)
@given(tables())
def test_no_published_count_is_below_the_threshold_and_all_are_rounded(cells: dict) -> None:
    result = protect_table(cells)
    for value in _published_values(result):
        assert value >= THRESHOLD  # a published count is never small
        assert value % 5 == 0
    for key, value in cells.items():
        if value < THRESHOLD:
            assert result["cells"][key] is None


@settings(max_examples=300)
@given(tables())
def test_no_suppressed_cell_can_be_recovered_from_a_line_total(cells: dict) -> None:
    result = protect_table(cells)
    rows = {r for r, _ in cells}
    cols = {c for _, c in cells}
    lines = [[(r, c) for c in cols if (r, c) in cells] for r in rows]
    lines += [[(r, c) for r in rows if (r, c) in cells] for c in cols]
    for line in lines:
        hidden = [k for k in line if result["cells"][k] is None]
        if hidden:
            # never exactly one hidden cell, and the hidden cells never add up to a small number
            assert len(hidden) >= 2 or len(line) == 1
            assert sum(cells[k] for k in hidden) >= THRESHOLD or len(hidden) == len(line)


def test_a_line_needing_secondary_suppression() -> None:
    result = protect_line({"a": 3, "b": 20, "c": 41, "d": 9})
    assert result == {"cells": {"a": None, "b": 20, "c": 40, "d": None}, "total": 75}


def test_rounding_is_to_the_nearest_five() -> None:
    assert [round5(v) for v in (8, 9, 12, 13, 17, 18, 100)] == [10, 10, 10, 15, 15, 20, 100]


def test_public_measures_hide_small_counts_and_their_complements() -> None:
    rows = [
        {
            "measure": "cwt_62",
            "provider": "A",
            "numerator": 95,
            "denominator": 100,
            "rate": 0.95,
            "ci_low": 0.9,
            "ci_high": 0.98,
            "target": 0.85,
            "met": True,
        },  # only 5 missed the standard: rate would reveal them
        {
            "measure": "cwt_62",
            "provider": "B",
            "numerator": 60,
            "denominator": 90,
            "rate": 0.6666,
            "ci_low": 0.5,
            "ci_high": 0.7,
            "target": 0.85,
            "met": False,
        },
        {
            "measure": "cwt_62",
            "provider": "C",
            "numerator": 3,
            "denominator": 4,
            "rate": 0.75,
            "ci_low": 0.3,
            "ci_high": 0.95,
            "target": 0.85,
            "met": False,
        },
        {
            "measure": "cwt_62",
            "provider": "D",
            "numerator": 20,
            "denominator": 30,
            "rate": 0.6666,
            "ci_low": 0.5,
            "ci_high": 0.8,
            "target": 0.85,
            "met": False,
        },  # the smallest other cell: suppressed to protect C
    ]
    public = {r["provider"]: r for r in public_measures(rows, ["provider"])}
    assert public["A"]["rate"] is None and public["A"]["suppressed"]
    assert public["B"]["rate"] == 0.667 and public["B"]["numerator"] == 60 and public["B"]["denominator"] == 90
    assert public["C"]["numerator"] is None and public["C"]["denominator"] is None
    assert public["D"]["numerator"] is None and public["D"]["rate"] is None  # secondary suppression
    assert all(v is None or v >= THRESHOLD for r in public.values() for v in (r["numerator"], r["denominator"]))
