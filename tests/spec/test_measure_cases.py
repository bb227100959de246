"""Every worked measure example in ``measures/*.yaml``, on every engine.

Each case's events are ingested into a store of their own, the measures it names are computed over
its period on the engine under test, and each expected numerator, denominator and rate (overall,
or for one breakdown group) must match exactly.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from carecontract.measures.compute import BREAKDOWNS, compute_measures
from carecontract.measures.definitions import MEASURE_IDS
from tests.spec.cases import SPEC, Case, load_cases, store_for

CASES = load_cases(SPEC / "measures", {"period", "expect"})
FIGURES = ("numerator", "denominator", "rate", "met")


def _period(case: Case) -> tuple[date, date]:
    period = case.data["period"]
    return period["from"], period["to"]


def _expectations(case: Case) -> dict[tuple[str, ...], list[dict]]:
    """The case's expectations grouped by breakdown, so each breakdown is computed once."""
    grouped: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for expected in case.data["expect"]:
        by = expected.get("by") or {}
        unknown = set(expected) - {"measure", "by", *FIGURES}
        assert not unknown, f"{case.id}: unknown keys {sorted(unknown)} in {expected}"
        assert expected["measure"] in MEASURE_IDS, f"{case.id}: unknown measure {expected['measure']!r}"
        assert set(by) <= set(BREAKDOWNS), f"{case.id}: unknown breakdown in {by}"
        grouped[tuple(sorted(by))].append(expected)
    return grouped


def _matches(row: dict, expected: dict) -> bool:
    return row["measure"] == expected["measure"] and all(
        str(row[k]) == str(v) for k, v in (expected.get("by") or {}).items()
    )


@pytest.mark.parametrize("case", CASES)
def test_measure_case(case: Case, engine: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = store_for(case, tmp_path_factory)
    start, end = _period(case)
    for by, expectations in _expectations(case).items():
        only = sorted({e["measure"] for e in expectations})
        rows = compute_measures(store, start, end, by=by, only=only, engine=engine)
        for expected in expectations:
            found = [r for r in rows if _matches(r, expected)]
            assert len(found) == 1, f"{case.id}: no single row for {expected} in {rows}"
            actual = {k: found[0][k] for k in FIGURES if k in expected}
            wanted = {k: pytest.approx(v, abs=1e-9) if k == "rate" else v for k, v in expected.items() if k in FIGURES}
            assert actual == wanted, f"{case.id}: {expected['measure']} {expected.get('by') or ''}"


def test_there_are_cases_for_every_measure_but_the_derived_one() -> None:
    covered = {e["measure"] for param in CASES for e in param.values[0].data["expect"]}
    assert covered == set(MEASURE_IDS) - {"equity_gap"}
