"""Disclosure control: nothing published below 8, and no suppressed cell recoverable from totals."""

from __future__ import annotations

import itertools
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.publish.disclosure import (
    THRESHOLD,
    PublicTables,
    default_period,
    protect_line,
    protect_table,
    public_measures,
    public_money,
    published_periods,
    round5,
)
from carecontract.terms import load_terms
from carecontract.terms.model import Publication
from tests.conftest import CANCER_TERMS

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
    """In every line (a row or column and its total, or the totals and the grand total): under a
    shown total, never exactly one hidden cell, and hidden cells adding up to at least 8; a hidden
    total never has every cell of its line shown (it would be their sum). The intruder's full
    linear-programming audit of such tables is in tests/test_attacks.py."""
    result = protect_table(cells)
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    lines = [(result["rows"][r], [(cells[r, c], result["cells"][r, c]) for c in cols]) for r in rows]
    lines += [(result["columns"][c], [(cells[r, c], result["cells"][r, c]) for r in rows]) for c in cols]
    row_totals = [(sum(cells[r, c] for c in cols), result["rows"][r]) for r in rows]
    col_totals = [(sum(cells[r, c] for r in rows), result["columns"][c]) for c in cols]
    lines += [(result["total"], row_totals), (result["total"], col_totals)]
    for total, members in lines:
        hidden = [exact for exact, shown in members if shown is None]
        if total is None:
            assert hidden or not members
        elif hidden:
            assert len(hidden) >= 2 and sum(hidden) >= THRESHOLD


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


# -- margins, linked tables, derived figures, published periods ----------------------------------


@settings(max_examples=200)
@given(tables())
def test_row_and_column_totals_are_protected_against_the_grand_total(cells: dict) -> None:
    """A hidden row total would otherwise be the grand total less the shown ones."""
    result = protect_table(cells)
    if result["total"] is None:
        return
    for margin in (result["rows"], result["columns"]):
        hidden = [k for k, v in margin.items() if v is None]
        assert len(hidden) != 1 or len(margin) == 1


def test_a_hidden_margin_needs_a_partner() -> None:
    # rows: 3 (hidden) and 50; without protection 55 - 50 gives the 3 back
    result = protect_table({("a", "x"): 1, ("a", "y"): 2, ("b", "x"): 25, ("b", "y"): 25})
    assert (result["rows"]["a"] is None and result["total"] is None) or result["rows"]["b"] is None


def _relations(rows: list[dict], dims: tuple[str, ...], measure: str) -> list[tuple[tuple, list[tuple]]]:
    """Written out here: each published count and the finer counts that add up to it."""
    levels = {d: sorted({r[d] for r in rows}, key=str) for d in dims}
    tables = [t for k in range(3) for t in itertools.combinations(dims, k)]
    out = []
    for table in tables:
        for key in itertools.product(*[levels[d] for d in table]):
            for extra in dims:
                finer = tuple(d for d in dims if d in table or d == extra)
                if extra in table or finer not in tables:
                    continue
                for field in ("numerator", "denominator"):
                    parts = []
                    for value in levels[extra]:
                        fixed = dict(zip(table, key, strict=True)) | {extra: value}
                        parts.append((finer, tuple(fixed[d] for d in finer), field))
                    out.append(((table, key, field), parts))
    return out


@st.composite
def measure_rows(draw: st.DrawFn) -> list[dict]:
    levels = {d: range(draw(st.integers(1, 3))) for d in ("a", "b", "c")}
    rows = []
    for cell in itertools.product(*levels.values()):
        d = draw(st.integers(0, 30))
        rows.append(
            {
                "measure": "m",
                **dict(zip(levels, cell, strict=True)),
                "numerator": draw(st.integers(0, d)),
                "denominator": d,
            }
        )
    return rows


@settings(max_examples=100, deadline=None)
@given(measure_rows())
def test_linked_tables_leave_no_lone_hidden_count_in_any_relation(rows: list[dict]) -> None:
    dims = ("a", "b", "c")
    tables = PublicTables(rows, dims)
    shown = {}
    for table in tables.tables:
        for r in tables.rows(table):
            key = tuple(r[d] for d in table)
            shown[table, key, "numerator"] = r["numerator"]
            shown[table, key, "denominator"] = r["denominator"]
            assert all(r[f] is None or (r[f] >= THRESHOLD and r[f] % 5 == 0) for f in ("numerator", "denominator"))
    exact = {}
    for table in tables.tables:
        for r in rows:
            key = tuple(r[d] for d in table)
            for f in ("numerator", "denominator"):
                exact[table, key, f] = exact.get((table, key, f), 0) + r[f]
    for total, parts in _relations(rows, dims, "m"):
        members = [total, *parts]
        hidden = [m for m in members if shown.get(m) is None]
        assert len(hidden) != 1, (total, hidden)  # one hidden member is the others' difference
        hidden_parts = [p for p in parts if shown.get(p) is None]
        if shown.get(total) is not None and hidden_parts:
            assert sum(exact.get(p, 0) for p in hidden_parts) >= THRESHOLD


def test_rates_come_from_the_published_counts() -> None:
    rows = [{"measure": "cwt_62", "numerator": 23, "denominator": 61, "target": 0.85}]
    (row,) = public_measures(rows, [])
    assert (row["numerator"], row["denominator"]) == (25, 60)
    assert row["rate"] == round(25 / 60, 3) == 0.417  # not 23/61 = 0.377
    assert row["met"] is False


def test_money_is_suppressed_with_its_count_and_otherwise_at_the_published_count() -> None:
    assert public_money(743.63, 1, None) is None
    assert public_money(0.0, 0, None) is None
    assert public_money(23 * 743.63, 23, 25) == 18_600.0  # 743.63 × 25 = 18,590.75, to £100


def test_published_periods_follow_the_terms() -> None:
    terms = load_terms(CANCER_TERMS).contract
    years = published_periods(terms)
    assert years[0] == (date(2017, 4, 1), date(2018, 3, 31)) and len(years) == terms.term.years
    quarters = published_periods(terms.model_copy(update={"publication": Publication(period="quarter")}))
    assert quarters[:4] == [
        (date(2017, 4, 1), date(2017, 6, 30)),
        (date(2017, 7, 1), date(2017, 9, 30)),
        (date(2017, 10, 1), date(2017, 12, 31)),
        (date(2018, 1, 1), date(2018, 3, 31)),
    ]
    months = published_periods(terms.model_copy(update={"publication": Publication(period="month")}))
    assert months[10] == (date(2018, 2, 1), date(2018, 2, 28)) and len(months) == 12 * terms.term.years
    assert default_period(terms, date(2017, 5, 1), date(2019, 6, 30)) == (date(2018, 4, 1), date(2019, 3, 31))
    assert default_period(terms, date(2017, 5, 1), date(2017, 6, 30)) == years[0]  # none ended: the one with data
    assert default_period(terms, None, None) is None


def test_the_publication_setting_is_read_from_the_terms(tmp_path) -> None:
    text = CANCER_TERMS.read_text() + "\npublication:\n  period: quarter\n"
    path = tmp_path / "terms.yaml"
    path.write_text(text)
    terms = load_terms(path)
    assert terms.contract.publication.period == "quarter"
    assert terms.fingerprint == load_terms(CANCER_TERMS).fingerprint  # what is paid did not change


# -- fair comparisons: public SPC months and case-mix adjusted ratios ---------------------------


def _months(counts: list[tuple[int, int]]) -> list[dict]:
    return [
        {"month": date(2024, 4 + i, 1) if i < 9 else date(2025, i - 8, 1), "numerator": n, "denominator": d}
        for i, (n, d) in enumerate(counts)
    ]


def test_a_small_month_is_suppressed_with_a_partner_against_the_period_total() -> None:
    from carecontract.publish.disclosure import public_months

    points = _months([(40, 80), (3, 6), (45, 90), (50, 100)])  # one month of 6 cases
    total = {"rate": 0.5, "suppressed": False}
    out = public_months(points, total)
    hidden = [m["month"] for m in out if m["suppressed"]]
    assert len(hidden) >= 2  # the small month and a partner: the total less the shown ones is no single month
    hidden_cases = sum(p["denominator"] for p in points if p["month"] in hidden)
    assert hidden_cases >= THRESHOLD
    for m in out:
        if not m["suppressed"]:
            assert m["denominator"] % 5 == 0 and m["denominator"] >= THRESHOLD
            assert m["rate"] == m["numerator"] / m["denominator"]  # from the rounded counts
        else:
            assert m["rate"] is m["numerator"] is m["denominator"] is None


def test_a_month_whose_complement_is_small_is_suppressed() -> None:
    from carecontract.publish.disclosure import public_months

    out = public_months(_months([(78, 80), (40, 80), (41, 80), (39, 80)]), {"rate": 0.5, "suppressed": False})
    assert out[0]["suppressed"]  # 2 missed the standard: a rate would reveal them


def test_every_month_is_suppressed_with_its_period() -> None:
    from carecontract.publish.disclosure import public_months

    out = public_months(_months([(40, 80), (45, 90)]), {"rate": None, "suppressed": True})
    assert all(m["suppressed"] for m in out)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=12))
def test_no_suppressed_month_comes_back_from_the_period_total(pairs: list[tuple[int, int]]) -> None:
    from carecontract.publish.disclosure import public_months

    points = _months([(n, n + m) for n, m in pairs])
    out = public_months(points, {"rate": 0.5, "suppressed": False})
    hidden = [p for p, m in zip(points, out, strict=True) if m["suppressed"]]
    # counted here, not by the code under test: for each count the period publishes (8 or more), the
    # months hidden under it are none, or two or more that add up to the threshold or more, or one
    # that is no small count (its value is then no disclosure)
    for part in (lambda p: p["denominator"], lambda p: p["numerator"], lambda p: p["denominator"] - p["numerator"]):
        if sum(part(p) for p in points) < THRESHOLD:
            continue  # the period's own figure is suppressed: nothing to subtract from
        under = [part(p) for p in hidden]
        assert (len(under) >= 2 and sum(under) >= THRESHOLD) or all(v >= THRESHOLD for v in under)
    for p, m in zip(points, out, strict=True):
        if not m["suppressed"]:
            assert p["numerator"] >= THRESHOLD and p["denominator"] - p["numerator"] >= THRESHOLD


def test_public_adjusted_ratios_come_from_the_published_counts() -> None:
    from carecontract.publish.disclosure import public_adjusted

    raw = [
        {"measure": "early_stage", "provider": "A", "numerator": 120, "denominator": 250},
        {"measure": "early_stage", "provider": "B", "numerator": 61, "denominator": 143},
        {"measure": "early_stage", "provider": "C", "numerator": 5, "denominator": 9},  # small
        {"measure": "early_stage", "provider": "D", "numerator": 30, "denominator": 34},  # 4 not early
    ]
    tables = PublicTables(raw, ("provider",))
    adjusted = [
        {
            "measure": "early_stage_oe",
            "base_measure": "early_stage",
            "provider": r["provider"],
            "observed": o,
            "expected": e,
        }
        for r, o, e in zip(raw, (120, 61, 5, 30), (117.3, 70.2, 4.1, 28.0), strict=True)
    ]
    out = {r["provider"]: r for r in public_adjusted(tables, adjusted, ("provider",))}
    published = {r["provider"]: r for r in tables.rows(("provider",)) if r["measure"] == "early_stage"}
    assert out["C"]["suppressed"] and out["C"]["ratio"] is None  # fewer than 8 observed
    assert out["D"]["suppressed"] and out["D"]["expected"] is None  # its complement is small
    for unit in ("A", "B"):
        row = out[unit]
        assert not row["suppressed"]
        assert row["observed"] == published[unit]["numerator"] and row["observed"] % 5 == 0
        assert round(row["ratio"] * row["expected"]) == row["observed"]  # nothing finer than the rounded count
    assert out["A"]["ratio"] == round(120 / 117.3, 3)  # 120 is already a multiple of 5
    assert out["B"]["ratio"] == round(60 / 70.2, 3)  # 61 published as 60


def test_public_adjusted_suppresses_a_small_expected_count() -> None:
    from carecontract.publish.disclosure import public_adjusted

    raw = [{"measure": "early_stage", "provider": "A", "numerator": 10, "denominator": 200}]
    adjusted = [{"measure": "early_stage_oe", "base_measure": "early_stage", "provider": "A", "expected": 6.5}]
    (row,) = public_adjusted(PublicTables(raw, ("provider",)), adjusted, ("provider",))
    assert row["suppressed"] and row["ratio"] is None
