"""The stress test: deterministic, exact at zero variance, monotone in demand, and it flags UnitingCare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.terms import TermsError, load_terms
from carecontract.terms.model import Distribution
from carecontract.viability.projection import cumulative, project
from carecontract.viability.simulate import draw, resolve_inputs, simulate, stress

ROOT = Path(__file__).parent.parent
UNITINGCARE = ROOT / "contracts" / "unitingcare.yaml"
CANCER = ROOT / "contracts" / "staffordshire-cancer.yaml"


def test_same_seed_same_results_different_seed_different() -> None:
    c = load_terms(UNITINGCARE).contract
    a, b, other = stress(c, 2000, seed=5), stress(c, 2000, seed=5), stress(c, 2000, seed=6)
    assert np.array_equal(a.pop("_cumulative"), b.pop("_cumulative"))
    assert a == b
    assert other["expected_gap_gbp"] != a["expected_gap_gbp"]


@pytest.mark.parametrize("path", [UNITINGCARE, CANCER], ids=["unitingcare", "staffordshire"])
def test_zero_variance_reproduces_the_deterministic_projection_exactly(path: Path) -> None:
    inputs = resolve_inputs(load_terms(path).contract)
    inputs.risks = {k: Distribution(dist="fixed", value=v.central) for k, v in inputs.risks.items()}
    inputs.shock_probability = 0.0
    result = simulate(inputs, draw(inputs, 50, seed=1))
    expected = project(inputs)
    for run in range(50):
        assert result["surplus"][run].tolist() == expected
        assert result["cumulative"][run].tolist() == cumulative(expected)


def test_stochastic_runs_match_the_per_run_loop() -> None:
    inputs = resolve_inputs(load_terms(UNITINGCARE).contract)
    draws = draw(inputs, 20, seed=3)
    result = simulate(inputs, draws)
    for run in range(20):
        one = {k: (v[run].tolist() if v.shape[1] > 1 else float(v[run, 0])) for k, v in draws.items()}
        assert np.allclose(result["surplus"][run], project(inputs, one), rtol=1e-12)


@settings(deadline=None, max_examples=25)
@given(st.floats(-0.02, 0.08), st.floats(0.0, 0.05))
def test_more_demand_growth_never_lowers_the_deficit_probability(growth: float, extra: float) -> None:
    low = load_terms(CANCER, [f"risks.demand_growth.mean={growth}"]).contract
    high = load_terms(CANCER, [f"risks.demand_growth.mean={growth + extra}"]).contract
    a = stress(low, 3000, seed=2, with_sensitivity=False)
    b = stress(high, 3000, seed=2, with_sensitivity=False)
    assert b["deficit_probability"] >= a["deficit_probability"]
    assert b["expected_gap_gbp"] >= a["expected_gap_gbp"] - 1e-6


def test_unitingcare_back_test_flags_the_contract() -> None:
    result = stress(load_terms(UNITINGCARE).contract, 20_000, seed=1)
    assert result["deficit_probability"] >= 0.5
    assert result["first_deficit_year_p50"] == 2015
    # the provider asked for £34.3m more for the first year: the model's first-year shortfall is of that order
    assert 20e6 < result["first_year_gap_p50_gbp"] < 50e6


def test_funding_demand_growth_shrinks_staffordshires_gap() -> None:
    unfunded = stress(load_terms(CANCER).contract, 20_000, seed=1, with_sensitivity=False)
    funded = stress(
        load_terms(CANCER, ["payments.fund_demand_growth=true"]).contract, 20_000, seed=1, with_sensitivity=False
    )
    assert funded["expected_gap_gbp"] < unfunded["expected_gap_gbp"]
    assert funded["deficit_probability"] <= unfunded["deficit_probability"]


def test_sensitivity_ranks_the_drivers() -> None:
    result = stress(load_terms(UNITINGCARE).contract, 5000, seed=1)
    swings = [r["swing"] for r in result["sensitivity"]]
    assert swings == sorted(swings, reverse=True)
    assert {r["parameter"] for r in result["sensitivity"]} >= {"baseline_cost_gbp", "demand_growth"}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("risks.savings_realised.sd=0.9", "sd² < mean × (1 − mean)"),
        ("risks.demand_growth={dist: normal, mean: 0.01}", "needs sd"),
        ("risks.demand_shock_probability=1.5", "less than or equal to 1"),
        ("risks.vat_exposed_share={dist: uniform, low: 0.9, high: 0.1}", "low 0.9 is above high 0.1"),
    ],
)
def test_bad_risks_are_precise(override: str, expected: str) -> None:
    with pytest.raises(TermsError) as info:
        load_terms(UNITINGCARE, [override])
    assert expected in str(info.value)


def test_stress_from_the_command_line(tmp_path: Path) -> None:
    args = ["stress", str(UNITINGCARE), "--runs", "2000", "--seed", "1", "--charts", str(tmp_path), "--json"]
    proc = subprocess.run([sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True)
    result = json.loads(proc.stdout)
    assert set(result) >= {
        "runs",
        "deficit_probability",
        "expected_gap_gbp",
        "gap_p50_gbp",
        "gap_p90_gbp",
        "first_deficit_year_p50",
        "by_year",
        "sensitivity",
        "terms",
    }
    assert all(set(s) >= {"parameter", "low", "high"} for s in result["sensitivity"])
    assert {p.name for p in tmp_path.iterdir()} == {"fan.html", "fan.png", "tornado.html", "tornado.png"}
    assert "plotly" in (tmp_path / "fan.html").read_text()[:5_000_000].lower()


def test_a_scope_roll_out_raises_costs_from_its_year_and_matches_the_projection() -> None:
    contract = load_terms(CANCER).contract
    factor = [1.0] * 4 + [2.5] * 6  # all tumour sites from year 5 cost 2.5× the first four
    inputs = resolve_inputs(contract, baseline_cost=20e6, scope_factor=factor)
    inputs.risks = {k: Distribution(dist="fixed", value=v.central) for k, v in inputs.risks.items()}
    inputs.shock_probability = 0.0
    result = simulate(inputs, draw(inputs, 5, seed=1))
    assert result["surplus"][0].tolist() == project(inputs)
    plain = resolve_inputs(contract, baseline_cost=20e6)
    plain.risks, plain.shock_probability = inputs.risks, 0.0
    without = simulate(plain, draw(plain, 5, seed=1))
    assert np.array_equal(result["care"][:, :4], without["care"][:, :4])
    assert np.allclose(result["care"][:, 4:], without["care"][:, 4:] * 2.5)


def test_the_terminal_shows_the_fan_and_the_tornado(tmp_path: Path) -> None:
    args = ["stress", str(UNITINGCARE), "--runs", "2000", "--seed", "1", "--charts", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "carecontract.cli", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "cumulative position, 10–90% of runs" in proc.stdout and "●" in proc.stdout
    assert "expected funding gap, £m" in proc.stdout and "◀" in proc.stdout and "▶" in proc.stdout


def test_calibrating_from_a_store_sees_the_year_five_roll_out(tmp_path: Path) -> None:
    from datetime import date

    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.records.store import Store
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.viability.simulate import calibrate_from_store

    files = write_economy(generate(30_000, 2, seed=3, start=date(2017, 4, 1)), tmp_path / "data", "parquet")
    ingest(files, tmp_path / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"cal"))
    base, factor = calibrate_from_store(load_terms(CANCER).contract, Store(tmp_path / "store"))
    assert base > 0
    assert factor[:4] == [1.0] * 4  # bladder, lung, prostate, breast
    assert all(f > 1.0 for f in factor[4:]) and len(set(factor[4:])) == 1  # all sites from year 5
