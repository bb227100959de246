"""Attacks on the public view, as an intruder with only public access would run them (issue 23).

A synthetic store with many small cells is served; the intruder asks the public API (and reads the
public report and the OCDS release) and tries every way the issue found to get a small count back:

- **window differencing**: answers for windows a day apart, subtracted;
- **margin differencing** and its strongest form, a **linear-programming audit** over every public
  table at once (the intruder's unknowns are the cells of the full cross-tabulation; each published
  count bounds its slice within ±2 of the rounded value; the LP finds each suppressed or small
  count's tightest bounds — the check Tau-Argus and sdcTable call an audit);
- **rate and interval inversion**: every (numerator, denominator) pair within the rounding that
  reproduces the published rate and 95% interval, assuming (as the old code did) they were computed
  from the exact counts; the intruder narrows each count to those pairs before the audit;
- **money leaks**: payments and costs beside suppressed counts, the ledger total less the shown
  cells, a cost of zero; percentages in the quality report.

A test fails if any count below the threshold is recovered exactly: its bounds pin one integer, and
that integer is the true count (the truth is the auditor's unsuppressed figure). The same audit runs
as a property test over random tables (hypothesis), small and few so it stays fast.
"""

from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, identity, vstack

from carecontract.publish.disclosure import THRESHOLD, PublicTables, public_accountability, public_quality
from carecontract.service import Principal, Tokens, create_app
from carecontract.terms import load_terms
from tests.conftest import CANCER_TERMS

NAME = "staffordshire-cancer-care"
AUDITOR = {"Authorization": "Bearer t-audit"}
DIMS = ("commissioner", "provider", "tumour_site", "imd_quintile")
AUDITED = ("early_stage", "cwt_62", "emergency_presentation")  # the issue's example and two more


# -- the store with many small cells ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_store(paid_store: Path) -> Path:
    """The shared synthetic economy (30,000 people, 2017–2019, paid): a few hundred cancer cases a
    year, so most commissioner × provider × tumour-site × deprivation cells are small."""
    return paid_store


@pytest.fixture(scope="module")
def client(small_store: Path) -> TestClient:
    tokens = Tokens({"t-audit": Principal("auditor")})
    return TestClient(create_app(small_store, [load_terms(CANCER_TERMS)], tokens, stress_runs=50))


def public(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path.format(name=NAME), params=params)
    assert response.status_code == 200, response.text
    return response.json()


PERIOD = {"from": "2017-04-01", "to": "2018-03-31"}


def truth(client: TestClient, table: tuple[str, ...], measure: str) -> dict[tuple, tuple[int, int]]:
    """The auditor's exact (numerator, denominator) by ``table``'s keys, for the audited period."""
    params = {**PERIOD, "by": list(table)}
    rows = client.get(f"/api/contracts/{NAME}/measures", params=params, headers=AUDITOR).json()
    return {tuple(r.get(d) for d in table): (r["numerator"], r["denominator"]) for r in rows if r["measure"] == measure}


# -- the intruder's tools ----------------------------------------------------------------------


def wilson(n: int, d: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out here (not the code under test's)."""
    p = n / d
    centre = (p + z * z / (2 * d)) / (1 + z * z / d)
    half = z * math.sqrt(p * (1 - p) / d + z * z / (4 * d * d)) / (1 + z * z / d)
    return centre - half, centre + half


def rounding_bounds(shown: int) -> tuple[int, int]:
    """What a published count (rounded to 5, never below the threshold) says of the true one."""
    return max(shown - 2, THRESHOLD), shown + 2


def inverted(row: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Bounds on (numerator, denominator) narrowed by the published rate and interval, as if they had
    been computed from the exact counts; None if no pair fits (they were not)."""
    if row.get("rate") is None or row.get("numerator") is None or row.get("denominator") is None:
        return None
    fits = []
    for n in range(*(b + i for b, i in zip(rounding_bounds(row["numerator"]), (0, 1), strict=True))):
        for d in range(*(b + i for b, i in zip(rounding_bounds(row["denominator"]), (0, 1), strict=True))):
            if d - n < THRESHOLD or round(n / d, 3) != row["rate"]:
                continue
            low, high = wilson(n, d)
            if row.get("ci_low") is None or (round(low, 3) == row["ci_low"] and round(high, 3) == row["ci_high"]):
                fits.append((n, d))
    if not fits:
        return None
    ns, ds = [n for n, _ in fits], [d for _, d in fits]
    return (min(ns), max(ns)), (min(ds), max(ds))


class Audit:
    """The intruder's linear programme: unknowns are the full cross-tabulation's cells (numerator and
    complement of each), every published count a bound on the sum over its slice."""

    def __init__(self, levels: dict[str, list[Any]]) -> None:
        self.dims = tuple(levels)
        self.cells = list(itertools.product(*levels.values()))
        self.codes = {d: {v: i for i, v in enumerate(values)} for d, values in levels.items()}
        self.columns = {d: np.array([self.codes[d][c[j]] for c in self.cells]) for j, d in enumerate(self.dims)}
        self.size = 2 * len(self.cells)  # n then m for each cell
        self.rows: list[np.ndarray] = []
        self.low: list[float] = []
        self.high: list[float] = []
        self._system: tuple[Any, np.ndarray] | None = None

    def slice(self, table: tuple[str, ...], key: tuple, part: str) -> np.ndarray:
        """The 0/1 vector of the unknowns that add up to one published count."""
        mask = np.ones(len(self.cells), dtype=bool)
        for d, v in zip(table, key, strict=True):
            mask &= self.columns[d] == self.codes[d][v]
        vector = np.zeros(self.size)
        if part in ("n", "d"):
            vector[: len(self.cells)] = mask
        if part in ("m", "d"):
            vector[len(self.cells) :] = mask
        return vector

    def bound(self, table: tuple[str, ...], key: tuple, part: str, low: float, high: float) -> None:
        self.rows.append(self.slice(table, key, part))
        self.low.append(low)
        self.high.append(high)

    def _solve(self, objective: np.ndarray) -> float | None:
        """min of ``objective`` · cells under the published bounds; None if infeasible, -inf if unbounded."""
        if self._system is None:
            dense, high, low = np.vstack(self.rows), np.array(self.high), np.array(self.low)
            finite = np.isfinite(high)
            self._system = (csr_matrix(np.vstack([dense[finite], -dense])), np.concatenate([high[finite], -low]))
        matrix, limits = self._system
        result = linprog(objective, A_ub=matrix, b_ub=limits, bounds=(0, None), method="highs")
        if result.status == 3:
            return -math.inf
        return result.fun if result.status == 0 else None

    def witnesses(self, targets: list[tuple[np.ndarray, int]]) -> set[int]:
        """Targets shown *not* pinned by a feasible table in which they reach their true value plus
        one. One programme finds such a table for as many as it can at once (maximise the sum of
        y_i <= min(slice_i, true_i + 1)), repeated on the rest while it decides more; the few left
        are then solved one by one."""
        if not self.rows:
            return set(range(len(targets)))
        self._solve(np.zeros(self.size))  # builds the system
        matrix, limits = self._system
        decided: set[int] = set()
        while len(decided) < len(targets):
            undecided = [i for i in range(len(targets)) if i not in decided]
            k = len(undecided)
            slices = csr_matrix(np.vstack([targets[i][0] for i in undecided]))
            system = vstack([hstack([matrix, csr_matrix((matrix.shape[0], k))]), hstack([-slices, identity(k)])])
            bounds = [(0, 1e6)] * self.size + [(0, targets[i][1] + 1) for i in undecided]
            objective = np.concatenate([np.zeros(self.size), -np.ones(k)])
            result = linprog(
                objective,
                A_ub=system.tocsr(),
                b_ub=np.concatenate([limits, np.zeros(k)]),
                bounds=bounds,
                method="highs",
            )
            if result.status != 0:
                return decided
            reached = result.x[self.size :]
            found = {i for i, y in zip(undecided, reached, strict=True) if y >= targets[i][1] + 1 - 1e-6}
            if not found:
                return decided
            decided |= found
        return decided

    def pins(self, table: tuple[str, ...], key: tuple, part: str, true: int) -> bool:
        """Whether the published figures pin this slice's count to exactly ``true``: its largest
        feasible value is below ``true + 1`` and its smallest above ``true - 1`` (the largest first:
        it is what usually shows a count is not pinned, so one programme is solved, not two)."""
        if not self.rows:
            return False
        target = self.slice(table, key, part)
        most = self._solve(-target)
        if most is None or not true - 1e-6 <= -most < true + 1 - 1e-6:
            return False
        least = self._solve(target)
        return least is not None and least > true - 1 + 1e-6 and math.ceil(least - 1e-6) == true


def build_audit(
    levels: dict[str, list[Any]], answers: dict[tuple[str, ...], list[dict[str, Any]]], invert: bool
) -> Audit:
    """The intruder's constraints from every public table's rows (one measure)."""
    audit = Audit(levels)
    for table, rows in answers.items():
        for row in rows:
            key = tuple(row.get(d) for d in table)
            narrowed = inverted(row) if invert else None
            if row.get("numerator") is not None:
                audit.bound(table, key, "n", *(narrowed[0] if narrowed else rounding_bounds(row["numerator"])))
            if row.get("denominator") is not None:
                audit.bound(table, key, "d", *(narrowed[1] if narrowed else rounding_bounds(row["denominator"])))
            if row.get("rate") is not None:  # a rate is shown only when the complement is at least 8
                audit.bound(table, key, "m", THRESHOLD, math.inf)
    return audit


def run_audit(
    levels: dict[str, list[Any]],
    answers: dict[tuple[str, ...], list[dict[str, Any]]],
    true: dict[tuple[str, ...], dict[tuple, tuple[int, int]]],
    stop_after: int | None = None,
) -> list[str]:
    """Every small count the intruder gets back exactly, with and without rate inversion (or the
    first ``stop_after`` of them)."""
    leaks: list[str] = []
    for invert in (True, False):
        audit = build_audit(levels, answers, invert)
        small = []
        for table, rows in answers.items():
            for row in rows:
                key = tuple(row.get(d) for d in table)
                n, d = true[table].get(key, (0, 0))
                for part, value in (("n", n), ("m", d - n), ("d", d)):
                    if value >= THRESHOLD:
                        continue
                    shown = {"n": row.get("numerator"), "d": row.get("denominator"), "m": None}[part]
                    assert shown is None, (table, key, part, value, shown)  # primary suppression
                    small.append((table, key, part, value))
        if audit.rows and audit._solve(np.zeros(audit.size)) is None:
            continue  # the intruder's assumption contradicts the published figures: nothing learnt
        free = audit.witnesses([(audit.slice(t, k, p), v) for t, k, p, v in small])
        for i, (table, key, part, value) in enumerate(small):
            if i not in free and audit.pins(table, key, part, value):
                leaks.append(f"{table} {key} {part}={value} (inversion: {invert})")
                if stop_after and len(leaks) >= stop_after:
                    return leaks
    return leaks


# -- window differencing -----------------------------------------------------------------------


def test_window_differencing_gets_nothing(client: TestClient) -> None:
    """Only published periods are answered, and they do not overlap: no two answers subtract."""
    path = "/api/contracts/{name}/measures"
    answered = {}
    starts = [date(2017, 3, 31), date(2017, 4, 1), date(2017, 4, 2), date(2018, 4, 1), date(2018, 4, 2)]
    ends = [date(2018, 3, 30), date(2018, 3, 31), date(2019, 3, 31), date(2019, 3, 30)]
    for first, last in itertools.product(starts, ends):
        if first > last:
            continue
        response = client.get(path.format(name=NAME), params={"from": str(first), "to": str(last), "by": "provider"})
        if response.status_code == 200:
            answered[first, last] = response.json()
        else:
            assert response.status_code == 422, response.text
    assert set(answered) == {(date(2017, 4, 1), date(2018, 3, 31)), (date(2018, 4, 1), date(2019, 3, 31))}
    periods = sorted(answered)
    for (a0, a1), (b0, b1) in itertools.combinations(periods, 2):
        assert a1 < b0 or b1 < a0  # disjoint: no window contains another
    for old in ({"start": "2017-04-02", "end": "2018-03-31"}, {"start": "2017-04-01"}):
        response = client.get(path.format(name=NAME), params=old)
        assert response.status_code == (200 if old == {"start": "2017-04-01"} else 422)


# -- margin differencing, the audit, and rate inversion -------------------------------------------


def _answers(client: TestClient, measure: str) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    out = {}
    for k in range(3):
        for table in itertools.combinations(DIMS, k):
            rows = public(client, "/api/contracts/{name}/measures", **PERIOD, by=list(table))
            out[table] = [r for r in rows if r["measure"] == measure]
    return out


@pytest.mark.parametrize("measure", AUDITED)
def test_no_small_count_comes_back_from_any_combination_of_public_tables(client: TestClient, measure: str) -> None:
    answers = _answers(client, measure)
    levels = {d: sorted({r[d] for r in answers[(d,)]}, key=str) for d in DIMS}
    true = {table: truth(client, table, measure) for table in answers}
    small = sum(1 for t in true.values() for n, d in t.values() if 0 < n < THRESHOLD or 0 < d < THRESHOLD)
    assert small >= 40, small  # the store really has many small cells to attack
    assert run_audit(levels, answers, true) == []


def _naive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the issue attacked: each table on its own, small counts hidden, the rest rounded, and the
    rate and interval of the exact counts beside them."""
    out = []
    for r in rows:
        n, d = r["numerator"], r["denominator"]
        safe = n >= THRESHOLD and d - n >= THRESHOLD
        low, high = wilson(n, d) if d else (None, None)
        out.append(
            {
                **r,
                "numerator": 5 * math.floor(n / 5 + 0.5) if n >= THRESHOLD else None,
                "denominator": 5 * math.floor(d / 5 + 0.5) if d >= THRESHOLD else None,
                "rate": round(n / d, 3) if safe else None,
                "ci_low": round(low, 3) if safe else None,
                "ci_high": round(high, 3) if safe else None,
            }
        )
    return out


def test_the_audit_finds_what_the_issue_found_in_a_naive_publication(client: TestClient) -> None:
    """The attack is not toothless: on the old way of publishing (each table alone, rates of the
    exact counts) it gets small counts back exactly."""
    measure = "fds_28"  # since the economy has nine providers (rates.yaml), early stage's naive tables pin none
    answers = _answers(client, measure)
    levels = {d: sorted({r[d] for r in answers[(d,)]}, key=str) for d in DIMS}
    true = {table: truth(client, table, measure) for table in answers}
    naive = {}
    for table, rows in answers.items():
        exact = [
            {**row, "numerator": true[table].get(k, (0, 0))[0], "denominator": true[table].get(k, (0, 0))[1]}
            for row in rows
            for k in [tuple(row.get(d) for d in table)]
        ]
        naive[table] = _naive(exact)
    assert len(run_audit(levels, naive, true, stop_after=3)) >= 3


def test_simple_margin_differencing_gets_nothing(client: TestClient) -> None:
    """The issue's probe: ``by=tumour_site`` less ``by=provider&by=tumour_site``, and every other pair."""
    leaks = []
    for measure in AUDITED:
        answers = _answers(client, measure)
        for table, rows in answers.items():
            for extra in DIMS:
                if extra in table or len(table) >= 2:
                    continue
                finer = tuple(d for d in DIMS if d in table or d == extra)
                true = truth(client, finer, measure)
                for row in rows:
                    key = tuple(row.get(d) for d in table)
                    below = [r for r in answers[finer] if tuple(r.get(d) for d in table) == key]
                    for field in ("numerator", "denominator"):
                        hidden = [r for r in below if r[field] is None]
                        if row[field] is None or len(hidden) != 1:
                            continue
                        guess = row[field] - sum(r[field] for r in below if r[field] is not None)
                        exact = true.get(tuple(hidden[0].get(d) for d in finer), (0, 0))
                        value = exact[0] if field == "numerator" else exact[1]
                        if value < THRESHOLD and guess == value:
                            leaks.append((measure, table, key, field))
    assert leaks == []


def test_rates_and_intervals_say_nothing_beyond_the_published_counts(client: TestClient) -> None:
    """Each public rate and interval is that of the *published* counts, so inverting it gives back
    only what is already shown (the issue recovered 26 of 42 exact counts from them)."""
    rows = public(client, "/api/contracts/{name}/measures", **PERIOD)
    rows += public(client, "/api/contracts/{name}/measures", **PERIOD, by=["provider"])
    rows += public(client, "/api/contracts/{name}/measures", **PERIOD, by=["provider", "commissioner"])
    checked = 0
    for r in rows:
        if r["rate"] is None or r["numerator"] is None:
            continue
        assert r["rate"] == round(r["numerator"] / r["denominator"], 3)
        low, high = wilson(r["numerator"], r["denominator"])
        assert (r["ci_low"], r["ci_high"]) == (round(low, 3), round(high, 3))
        checked += 1
    assert checked


# -- money and percentages ---------------------------------------------------------------------


def test_money_follows_the_counts_behind_it(client: TestClient) -> None:
    table = public(client, "/api/contracts/{name}/accountability", **PERIOD)
    exact = {
        (r["commissioner"], r["subcontractor"]): r
        for r in client.get(f"/api/contracts/{NAME}/accountability", params=PERIOD, headers=AUDITOR).json()
    }
    assert any(r["events"] is None for r in table)  # there are suppressed cells to attack
    ledger = public(client, "/api/contracts/{name}/payments")["by_year_and_account"]
    for r in table:
        if r["events"] is None:
            assert r["cost_gbp"] is None and r["payment_received_gbp"] is None, r
        else:
            assert r["events"] >= THRESHOLD and r["cost_gbp"] and r["cost_gbp"] > 0  # no zero giving a cell away
    for sub in {r["subcontractor"] for r in table}:
        column = [r for r in table if r["subcontractor"] == sub]
        hidden = [r for r in column if r["events"] is None]
        if len(hidden) != 1:
            continue  # two or more hidden: the ledger total less the shown gives only their sum
        paid = sum(e["net_gbp"] for e in ledger if e["account"] == f"subcontractor:{sub}" and e["year"] == 2017)
        shown = [r for r in column if r["events"] is not None]
        unit = sum(r["payment_received_gbp"] for r in shown) / sum(r["events"] for r in shown)
        guess = round((paid - sum(r["payment_received_gbp"] for r in shown)) / unit)
        true = exact[hidden[0]["commissioner"], sub]["events"]
        assert not (true < THRESHOLD and guess == true), (sub, guess)


def test_public_money_is_at_the_published_count() -> None:
    rows = [
        {"commissioner": c, "subcontractor": s, "events": e, "cost_gbp": 743.63 * e, "payment_received_gbp": 700.0 * e}
        for c, s, e in [("A", "X", 1), ("A", "Y", 40), ("B", "X", 52), ("B", "Y", 33), ("C", "X", 0), ("C", "Y", 19)]
    ]
    published = {(r["commissioner"], r["subcontractor"]): r for r in public_accountability(rows)}
    assert published["A", "X"]["cost_gbp"] is None and published["C", "X"]["cost_gbp"] is None
    for r in published.values():
        if r["events"] is not None:  # the price per event times the published count, to £100
            assert r["cost_gbp"] == round(743.63 * r["events"], -2)


def test_quality_percentages_reveal_no_small_count() -> None:
    report = {
        "rows": {"read": 5003, "accepted": 4990, "quarantined": 13},
        "columns": [
            {"column": "a", "completeness": 1.0, "invalid_rows": 0},
            {"column": "b", "completeness": round(5001 / 5003, 4), "invalid_rows": 2},
            {"column": "c", "completeness": round(4000 / 5003, 4), "invalid_rows": 40},
        ],
        "timeliness": {"latest_event": "2019-03-30", "earliest_event": "2017-04-02", "share_older_than_5y": 0.0002},
    }
    out = public_quality(report)
    columns = {c["column"]: c for c in out["columns"]}
    assert columns["a"]["completeness"] is None and columns["b"]["completeness"] is None  # 0 and 2 missing
    assert columns["b"]["validity"] is None and columns["c"]["validity"] is not None
    assert columns["c"]["completeness"] == round(4000 / 5005, 3)  # from the rounded counts
    assert out["timeliness"]["share_older_than_5y"] is None and out["timeliness"]["earliest_event"] == "2017-04"
    read = out["rows"]["read"]
    for c in out["columns"]:
        for field in ("completeness", "validity"):
            if c[field] is not None:  # what an intruder gets back is at least the threshold
                assert round(read * (1 - c[field])) >= THRESHOLD and round(read * c[field]) >= THRESHOLD


def test_the_public_quality_route_is_protected(client: TestClient) -> None:
    out = public(client, "/api/quality")
    assert all(v is None or (v >= THRESHOLD and v % 5 == 0) for v in out["rows"].values())


# -- the report and OCDS ----------------------------------------------------------------------


def test_the_public_report_shows_exactly_the_public_api_figures(client: TestClient, small_store: Path) -> None:
    """The report adds nothing an intruder could difference against the API: the same period, the
    same linked tables, the same accountability."""
    from carecontract.publish.report import gather_report

    data = gather_report(load_terms(CANCER_TERMS), small_store, public=True, runs=50)
    period = {"from": str(data.start), "to": str(data.end)}
    assert public(client, "/api/contracts/{name}/measures", **period) == data.outcomes
    by_provider = public(client, "/api/contracts/{name}/measures", **period, by="provider")
    assert [r for r in by_provider if r["measure"] in ("cwt_62", "fds_28")] == data.outcomes_by_provider
    assert public(client, "/api/contracts/{name}/accountability", **period) == data.accountability
    for f in data.flows:
        assert f["pathways"] is None or (f["pathways"] >= THRESHOLD and f["pathways"] % 5 == 0)


def test_ocds_carries_no_counts(small_store: Path) -> None:
    """OCDS is money between organisations by contract year; no count, and nothing by commissioner × cell."""
    import json

    from carecontract.publish.ocds import release_package

    text = json.dumps(release_package(load_terms(CANCER_TERMS), small_store))
    for word in ("numerator", "denominator", "events", "pathways", "patients"):
        assert f'"{word}"' not in text


# -- the property: random tables, the full audit -------------------------------------------------


@st.composite
def cubes(draw: st.DrawFn) -> tuple[dict[str, list[int]], list[dict[str, Any]]]:
    """A random store's measure rows by three breakdowns: small counts, many zeros."""
    levels = {d: list(range(draw(st.integers(2, 3)))) for d in ("a", "b", "c")}
    rows = []
    for cell in itertools.product(*levels.values()):
        d = draw(st.one_of(st.integers(0, 9), st.integers(0, 40)))
        n = draw(st.integers(0, d))
        rows.append({"measure": "m", **dict(zip(levels, cell, strict=True)), "numerator": n, "denominator": d})
    return levels, rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cubes())
def test_no_random_table_gives_back_a_small_count(cube: tuple[dict[str, list[int]], list[dict[str, Any]]]) -> None:
    levels, rows = cube
    tables = PublicTables(rows, tuple(levels))
    answers = {t: tables.rows(t) for t in tables.tables}
    true: dict[tuple[str, ...], dict[tuple, tuple[int, int]]] = {}
    for table in answers:  # the truth, summed here from the rows, not taken from the code under test
        sums: dict[tuple, list[int]] = {}
        for r in rows:
            entry = sums.setdefault(tuple(r[d] for d in table), [0, 0])
            entry[0] += r["numerator"]
            entry[1] += r["denominator"]
        true[table] = {k: (v[0], v[1]) for k, v in sums.items()}
    assert run_audit(levels, answers, true) == []


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 10_000), st.integers(8_000, 20_000))
def test_no_random_store_gives_back_a_small_count(
    tmp_path_factory: pytest.TempPathFactory, seed: int, people: int
) -> None:
    """The audit over a random small store (one contract year, every public table of two measures)."""
    from carecontract.measures.compute import BREAKDOWNS
    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.run import Run
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    out = tmp_path_factory.mktemp("random-store")
    files = write_economy(generate(people, 1, seed=seed, start=date(2017, 4, 1)), out / "data")
    ingest(files, out / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"random-store-key" * 2))
    run = Run.of(out / "store")
    first, last = date(2017, 4, 1), date(2018, 3, 31)
    rows = run.measures(first, last, by=BREAKDOWNS, only=["early_stage", "fds_28"])
    tables = PublicTables(rows, BREAKDOWNS)
    for measure in ("early_stage", "fds_28"):
        answers = {t: [r for r in tables.rows(t) if r["measure"] == measure] for t in tables.tables}
        levels = {d: sorted({r[d] for r in answers[(d,)]}, key=str) for d in BREAKDOWNS}
        true = {}
        for table in answers:  # the truth, summed here from the unsuppressed rows
            sums: dict[tuple, list[int]] = {}
            for r in rows:
                if r["measure"] == measure:
                    entry = sums.setdefault(tuple(r[d] for d in table), [0, 0])
                    entry[0] += r["numerator"]
                    entry[1] += r["denominator"]
            true[table] = {k: (v[0], v[1]) for k, v in sums.items()}
        assert run_audit(levels, answers, true) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 4), st.integers(2, 4), st.data())
def test_no_two_way_table_gives_back_a_small_count(rows: int, cols: int, data: st.DataObject) -> None:
    """``protect_table`` (the accountability table) under the same audit: each shown count bounds
    its slice, row and column totals and the grand total included."""
    from carecontract.publish.disclosure import protect_table

    cells = {
        (r, c): data.draw(st.one_of(st.integers(0, 9), st.integers(0, 60))) for r in range(rows) for c in range(cols)
    }
    result = protect_table(cells)
    levels = {"r": list(range(rows)), "c": list(range(cols))}
    shown = {("r", "c"): [{"r": r, "c": c, "numerator": v} for (r, c), v in result["cells"].items()]}
    shown[("r",)] = [{"r": r, "numerator": v} for r, v in result["rows"].items()]
    shown[("c",)] = [{"c": c, "numerator": v} for c, v in result["columns"].items()]
    shown[()] = [{"numerator": result["total"]}]
    true = {
        ("r", "c"): {k: (v, v) for k, v in cells.items()},
        ("r",): {(r,): (sum(cells[r, c] for c in range(cols)),) * 2 for r in range(rows)},
        ("c",): {(c,): (sum(cells[r, c] for r in range(rows)),) * 2 for c in range(cols)},
        (): {(): (sum(cells.values()),) * 2},
    }
    answers = {t: [{**row, "denominator": None} for row in rows_] for t, rows_ in shown.items()}
    assert run_audit(levels, answers, true) == []
