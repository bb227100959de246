"""Issue 19: where the gap comes from, break-even levers, options, Green Book discounting, trend calibration.

Each invariant is checked by an independent count: the waterfall's total against the stress
test's own expected gap, the fast evaluator against ``simulate`` switch by switch, Shapley weights
against an average over every ordering, the contingency break-even against a per-run closed form.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.publish.decisions import DecisionLog
from carecontract.terms import load_terms
from carecontract.viability.causes import expected_gaps, largest_remainder, shapley, waterfall
from carecontract.viability.discount import discount_factors, present_value
from carecontract.viability.levers import CONTINUOUS, Evaluator, break_even, solve_lever, term_length
from carecontract.viability.options import bailout, compare, parse_variant
from carecontract.viability.simulate import (
    CAUSES,
    Levers,
    StressError,
    deficit_and_gap,
    draw,
    resolve_inputs,
    simulate,
    stress,
    terms_levers,
)
from carecontract.viability.trend import log_linear

ROOT = Path(__file__).parent.parent
UNITINGCARE = ROOT / "contracts" / "unitingcare.yaml"
CANCER = ROOT / "contracts" / "staffordshire-cancer.yaml"


def _setup(path: Path = CANCER, runs: int = 3000, seed: int = 1, overrides: list[str] | None = None):
    contract = load_terms(path, overrides or []).contract
    inputs = resolve_inputs(contract)
    return contract, inputs, draw(inputs, runs, seed)


def _gap(inputs, draws, off=frozenset(), levers=Levers()) -> float:
    return float(deficit_and_gap(simulate(inputs, draws, off, levers)["cumulative"])[1].mean())


# -- the waterfall ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["shapley", "sequential"])
@pytest.mark.parametrize("path", [UNITINGCARE, CANCER], ids=["unitingcare", "staffordshire"])
def test_the_waterfall_adds_up_to_the_stress_tests_own_gap_to_the_penny(path: Path, method: str) -> None:
    contract = load_terms(path).contract
    w = waterfall(resolve_inputs(contract), draw(resolve_inputs(contract), 4000, 7), method)  # type: ignore[arg-type]
    assert w.base_pence + sum(w.contributions_pence.values()) == w.total_pence
    expected = stress(contract, 4000, seed=7, with_sensitivity=False)["expected_gap_gbp"]
    assert abs(w.total_pence - expected * 100) <= 1  # the same runs, counted by simulate


@settings(deadline=None, max_examples=30)
@given(st.sets(st.sampled_from(list(CAUSES))), st.sampled_from([UNITINGCARE, CANCER]))
def test_the_fast_evaluator_is_simulate_with_those_causes_off(on: set[str], path: Path) -> None:
    _contract, inputs, draws = _setup(path, runs=500)
    fast = expected_gaps(inputs, draws, [frozenset(on)])[0]
    slow = _gap(inputs, draws, frozenset(CAUSES) - on)
    assert fast == pytest.approx(slow, rel=1e-12, abs=1e-6)


def test_the_fast_evaluator_applies_the_terms_levers_like_simulate() -> None:
    overrides = ["payments.contingency_share=0.1", "payments.risk_corridor={width: 0.03, commissioner_share: 0.6}"]
    contract, inputs, draws = _setup(CANCER, 800, overrides=[*overrides, "payments.management_cap=0.1"])
    levers = terms_levers(contract)
    for on in (frozenset(), frozenset(CAUSES), frozenset({"demand_growth", "management_cost"})):
        fast = expected_gaps(inputs, draws, [on], levers)[0]
        assert fast == pytest.approx(_gap(inputs, draws, frozenset(CAUSES) - on, levers), rel=1e-12, abs=1e-6)


def test_shapley_equals_the_average_over_every_order_of_switching_on() -> None:
    causes = ["a", "b", "c", "d"]
    rng = np.random.default_rng(3)
    values = {frozenset(s): float(rng.uniform(0, 100)) for k in range(5) for s in itertools.combinations(causes, k)}
    values[frozenset()] = 0.0
    by_orders = dict.fromkeys(causes, Fraction(0))
    orders = list(itertools.permutations(causes))
    for order in orders:
        on: frozenset[str] = frozenset()
        for c in order:
            by_orders[c] += Fraction(values[on | {c}]) - Fraction(values[on])
            on = on | {c}
    assert shapley(values, causes) == {c: v / len(orders) for c, v in by_orders.items()}


def test_a_cause_that_changes_nothing_gets_nothing() -> None:
    contract = load_terms(UNITINGCARE, ["parameters.mobilisation_cost_gbp={2015: 0}"]).contract
    inputs = resolve_inputs(contract)
    w = waterfall(inputs, draw(inputs, 2000, 2))
    assert w.contributions_pence["mobilisation"] == 0
    assert w.contributions_pence["irrecoverable_vat"] > 0


@settings(max_examples=200)
@given(st.lists(st.fractions(min_value=-(10**6), max_value=10**6, max_denominator=1000), min_size=1, max_size=9))
def test_largest_remainder_keeps_each_part_within_one_and_adds_up(parts: list[Fraction]) -> None:
    named = {f"c{i}": p for i, p in enumerate(parts)}
    total = round(sum(parts))
    got = largest_remainder(named, total)
    assert sum(got.values()) == total
    assert all(abs(got[k] - v) < 2 for k, v in named.items())


# -- break-even --------------------------------------------------------------------------------------


def _closed_form_contingency(inputs, draws, appetite: float) -> float:
    """Per run, the smallest contingency that keeps it out of deficit: surplus grows by c × income × (1 − m)."""
    base = simulate(inputs, draws)
    slope = np.cumsum(base["income"] * (1.0 - draws["management_cost_share"]), axis=1)
    need = np.max(-base["cumulative"] / slope, axis=1)  # a run is safe at c iff c ≥ need (strictly above for < 0)
    runs = len(need)
    allowed = math.floor(appetite * runs)
    return float(np.sort(need)[runs - allowed - 1])  # at most `allowed` runs may still need more


@pytest.mark.parametrize("path", [UNITINGCARE, CANCER], ids=["unitingcare", "staffordshire"])
def test_the_contingency_break_even_matches_the_per_run_closed_form(path: Path) -> None:
    _contract, inputs, draws = _setup(path, runs=4000)
    result = solve_lever(Evaluator(inputs, draws), CONTINUOUS[0], 0.10)
    assert result.status == "solved"
    assert result.value == pytest.approx(_closed_form_contingency(inputs, draws, 0.10), abs=3e-4)
    assert result.probability <= 0.10
    below = Evaluator(inputs, draws).probability(contingency=result.value - 5e-4)
    assert below > 0.10
    assert result.value_low <= result.value <= result.value_high
    assert result.probability_low <= result.probability <= result.probability_high


@settings(deadline=None, max_examples=20)
@given(st.floats(0.0, 0.6), st.floats(0.001, 0.3))
def test_more_price_never_puts_a_run_into_deficit(c: float, more: float) -> None:
    _contract, inputs, draws = _setup(UNITINGCARE, runs=400)
    a, _ = deficit_and_gap(simulate(inputs, draws, levers=Levers(contingency=c))["cumulative"])
    b, _ = deficit_and_gap(simulate(inputs, draws, levers=Levers(contingency=c + more))["cumulative"])
    assert not (b & ~a).any()  # run by run: in deficit with more price ⇒ in deficit with less


@settings(deadline=None, max_examples=20)
@given(st.floats(0.0, 0.08), st.floats(0.001, 0.05))
def test_funding_more_growth_and_capping_management_lower_never_add_deficits(threshold: float, d: float) -> None:
    _contract, inputs, draws = _setup(CANCER, runs=400)

    def deficits(**kw) -> np.ndarray:
        return deficit_and_gap(simulate(inputs, draws, levers=Levers(**kw))["cumulative"])[0]

    assert not (deficits(funded_growth_above=threshold) & ~deficits(funded_growth_above=threshold + d)).any()
    assert not (deficits(management_cap=threshold) & ~deficits(management_cap=threshold + d)).any()


def test_a_shorter_term_never_has_more_deficits_and_the_term_lever_finds_the_longest_safe_one() -> None:
    _contract, inputs, draws = _setup(CANCER, runs=2000, overrides=["payments.contingency_share=0.2"])
    evaluator = Evaluator(inputs, draws)
    result = term_length(evaluator, 0.10)
    probabilities = [row["probability"] for row in result.curve]
    assert probabilities == sorted(probabilities)
    counted = [n for n in range(1, 11) if _prob_within(inputs, draws, n) <= 0.10]
    assert result.value == (max(counted) if counted and counted[0] == 1 else None)


def _prob_within(inputs, draws, years: int) -> float:
    """Deficit within the first ``years`` from the full simulation's own cumulative positions."""
    cumulative = simulate(inputs, draws)["cumulative"][:, :years]
    return float((cumulative.min(axis=1) < 0).mean())


def test_a_corridor_limits_the_gap_when_every_year_loses() -> None:
    _contract, inputs, draws = _setup(UNITINGCARE, runs=1000)
    gaps = [_gap(inputs, draws, levers=Levers(corridor=w, commissioner_share=0.5)) for w in (0.0, 0.05, 0.2, 0.5)]
    assert gaps == sorted(gaps)
    assert gaps[0] < _gap(inputs, draws)


def test_break_even_reports_every_lever_and_refuses_a_bad_appetite() -> None:
    _contract, inputs, draws = _setup(CANCER, runs=1500)
    rows = break_even(inputs, draws, 0.10)
    assert [r.lever for r in rows] == [
        "contingency",
        "funded_growth_above",
        "risk_corridor",
        "management_cap",
        "contingency_with_corridor",
        "vat_treatment",
        "term_years",
    ]
    vat = next(r for r in rows if r.lever == "vat_treatment")
    assert vat.curve[0]["probability"] <= vat.curve[1]["probability"]  # recovering VAT never hurts
    with pytest.raises(StressError):
        break_even(inputs, draws, 1.5)
    with pytest.raises(StressError, match="unknown lever"):
        break_even(inputs, draws, 0.1, levers=["price"])


def test_the_recommended_contingency_and_corridor_are_safe_on_a_fresh_seed() -> None:
    """Back-test (docs/backtest.md): price with the solver's package, then stress on other draws."""
    _contract, inputs, draws = _setup(CANCER, runs=20_000, seed=11)
    package = next(
        r for r in break_even(inputs, draws, 0.10, corridor=(0.02, 0.5)) if r.lever == "contingency_with_corridor"
    )
    sets = [
        f"payments.contingency_share={package.recommended:.4f}",
        "payments.risk_corridor={width: 0.02, commissioner_share: 0.5}",
    ]
    assert package.value < package.value_high < package.recommended
    for seed in (12, 13, 14):
        fresh = stress(load_terms(CANCER, sets).contract, 20_000, seed=seed, with_sensitivity=False)
        assert fresh["deficit_probability"] < 0.10
    assert stress(load_terms(CANCER).contract, 20_000, seed=12, with_sensitivity=False)["deficit_probability"] > 0.9


# -- options and discounting -------------------------------------------------------------------------


def test_green_book_discount_factors_step_down_after_year_30() -> None:
    f = discount_factors(80)
    assert f[0] == 1.0
    assert f[30] == pytest.approx(1.035**-30, rel=1e-12)
    assert f[31] == pytest.approx(1.035**-30 / 1.03, rel=1e-12)
    assert f[76] == pytest.approx(1.035**-30 * 1.03**-45 / 1.025, rel=1e-12)
    assert present_value(np.ones(3)) == pytest.approx(1 + 1 / 1.035 + 1 / 1.035**2)


def test_bail_out_payments_add_up_to_each_runs_gap() -> None:
    _contract, inputs, draws = _setup(UNITINGCARE, runs=300)
    cumulative = simulate(inputs, draws)["cumulative"]
    paid = bailout(cumulative)
    assert (paid >= 0).all()
    assert np.allclose(paid.sum(axis=1), deficit_and_gap(cumulative)[1])


def test_options_share_draws_so_identical_terms_give_identical_rows() -> None:
    terms = load_terms(CANCER)
    funded = load_terms(CANCER, ["payments.fund_demand_growth=true"])
    a, b, c = compare([("a", terms), ("b", terms), ("funded", funded)], runs=2000, seed=4)
    assert {**a.as_dict(), "label": ""} == {**b.as_dict(), "label": ""}
    assert c.expected_gap_gbp < a.expected_gap_gbp
    assert c.npc_payments_gbp > a.npc_payments_gbp  # funding growth costs the commissioners more
    factors = discount_factors(10)
    assert a.npc_payments_gbp == pytest.approx(
        sum(y["payments_mean_gbp"] * f for y, f in zip(a.by_year, factors, strict=True))
    )
    assert [y["deficit_probability"] for y in c.by_year][-1] <= c.deficit_probability
    biased = compare([("a", terms)], runs=2000, seed=4, optimism_bias=0.2)[0]
    assert biased.deficit_probability >= a.deficit_probability
    with pytest.raises(StressError, match="used twice"):
        compare([("a", terms), ("a", funded)], runs=10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("funded: payments.fund_demand_growth=true", ("funded", ["payments.fund_demand_growth=true"])),
        (
            "safe: payments.contingency_share=0.3; payments.risk_corridor={width: 0.02, commissioner_share: 0.5}",
            (
                "safe",
                ["payments.contingency_share=0.3", "payments.risk_corridor={width: 0.02, commissioner_share: 0.5}"],
            ),
        ),
        ("payments.contingency_share=0.3", ("payments.contingency_share=0.3", ["payments.contingency_share=0.3"])),
    ],
)
def test_variants_parse(text: str, expected: tuple) -> None:
    assert parse_variant(text) == expected


# -- trend -------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.floats(-0.05, 0.1), st.floats(10, 1e6), st.integers(3, 8))
def test_an_exact_exponential_trend_is_recovered_with_no_uncertainty(g: float, start: float, n: int) -> None:
    fit = log_linear({2017 + i: start * (1 + g) ** i for i in range(n)})
    assert fit.growth == pytest.approx(g, abs=1e-9)
    assert fit.sd == pytest.approx(0.0, abs=1e-9)


# -- the command line --------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "carecontract.cli", *args], capture_output=True, text=True)


def test_waterfall_breakeven_and_options_from_the_command_line(tmp_path: Path) -> None:
    proc = _cli("waterfall", str(UNITINGCARE), "--runs", "2000", "--seed", "1", "--json", "--charts", str(tmp_path))
    result = json.loads(proc.stdout)
    pence = round(result["base_gbp"] * 100) + sum(round(c["gbp"] * 100) for c in result["contributions"])
    assert pence == round(result["total_gbp"] * 100)
    assert {p.name for p in tmp_path.iterdir()} == {"waterfall.html", "waterfall.png"}
    proc = _cli("breakeven", str(CANCER), "--runs", "2000", "--json", "--appetite", "0.2")
    result = json.loads(proc.stdout)
    assert result["appetite"] == 0.2 and result["levers"][0]["lever"] == "contingency"
    proc = _cli(
        "options", str(CANCER), "--runs", "1000", "--json", "--variant", "funded: payments.fund_demand_growth=true"
    )
    assert [r["label"] for r in json.loads(proc.stdout)["options"]] == ["as written", "funded"]


@pytest.mark.parametrize(
    "args",
    [
        ["waterfall", str(CANCER), "--method", "random"],
        ["breakeven", str(CANCER), "--corridor", "wide"],
        ["breakeven", str(CANCER), "--appetite", "2", "--runs", "100"],
        ["options", str(CANCER), "--variant", "nothing:"],
        ["options", str(CANCER), "--optimism-bias", "-1", "--runs", "10"],
    ],
)
def test_mistakes_are_one_line(args: list[str]) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


def test_appraise_writes_the_five_cases_and_records_them(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    args = ["appraise", str(UNITINGCARE), "--runs", "1500", "--out", str(tmp_path / "out"), "--log", str(log)]
    proc = _cli(*args, "--variant", "nhs: payments.vat.UCP=recoverable", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    html = (tmp_path / "out" / "appraisal.html").read_text()
    md = (tmp_path / "out" / "appraisal.md").read_text()
    for case in ("Strategic case", "Economic case", "Commercial case", "Financial case", "Management case"):
        assert case in html and case in md
    assert "What the model cannot know" in md
    stress_result = result["results"]["stress"]
    assert f"{stress_result['deficit_probability']:.1%}" in md  # the figure as computed, not typed
    assert "Period by period" in md
    assert html.count('id="options"') == 1 and html.count('id="waterfall"') == 1  # both charts, Plotly inlined once
    record = DecisionLog(log).records()[-1]
    assert record["kind"] == "options_appraisal" and not DecisionLog(log).verify()
    assert record["attachment"]["name"] == "appraisal.html"


@settings(deadline=None, max_examples=25)
@given(
    st.sets(st.sampled_from(list(CAUSES))),
    st.floats(0, 0.5),
    st.one_of(st.none(), st.floats(0, 0.05)),
    st.one_of(st.none(), st.floats(0, 0.1)),
    st.one_of(st.none(), st.floats(0, 0.3)),
)
def test_the_per_run_projection_agrees_with_simulate_under_causes_and_levers(
    off: set[str], contingency: float, threshold: float | None, corridor: float | None, cap: float | None
) -> None:
    from carecontract.viability.projection import project

    _contract, inputs, draws = _setup(UNITINGCARE, runs=5)
    levers = Levers(contingency, threshold, corridor, 0.5, cap)
    result = simulate(inputs, draws, frozenset(off), levers)
    for run in range(5):
        one = {k: (v[run].tolist() if v.shape[1] > 1 else float(v[run, 0])) for k, v in draws.items()}
        assert np.allclose(result["surplus"][run], project(inputs, one, frozenset(off), levers), rtol=1e-12)


# -- calibration from a store: the scope split, the scope warning, the trend -------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    root = tmp_path_factory.mktemp("calibrated")
    files = write_economy(generate(40_000, 5, seed=5, start=date(2017, 4, 1)), root / "data", "parquet")
    ingest(files, root / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"trend"))
    return root / "store"


def test_the_scope_split_agrees_with_what_payments_count(store: Path) -> None:
    from carecontract.baseline.compute import activity_rows, scope_split
    from carecontract.payments.costs import costs_by_year, costs_in_scope
    from carecontract.run import Run

    terms = load_terms(CANCER)
    run = Run(store, terms)
    activity = activity_rows(run.events, terms)
    split = scope_split(activity, terms)
    cube = costs_by_year(run, terms.contract)
    codes = [s.code for s in terms.contract.subcontractors]
    assert [r["year"] for r in split] == [2017, 2018, 2019, 2020, 2021]
    for r in split:
        sites = terms.contract.scope_at(terms.contract.term.year_start(r["year"] - 2017))
        paid = sum(costs_in_scope(cube, r["year"], codes, sites).values()) / 100
        assert r["in_scope_gbp"] == pytest.approx(paid, abs=0.01)
        recorded = sum(a["cost_gbp"] for a in activity if a["year"] == r["year"])
        assert r["in_scope_gbp"] + sum(r["out_of_scope_gbp"].values()) == pytest.approx(recorded, abs=0.01)
        assert r["ratio"] == pytest.approx(r["in_scope_gbp"] / 68_700_000)
        for dimension in ("provider", "tumour_site", "service"):
            cells = r["by"][dimension].values()
            assert sum(c["in scope"] for c in cells) == pytest.approx(r["in_scope_gbp"], abs=0.01)
        assert set(r["by"]["provider"]["RJE"]) == {"in scope", "out of scope"}
        assert r["by"]["provider"].get("HKHH1", {"in scope": 0})["in scope"] == 0  # not a subcontractor
    assert split[-1]["out_of_scope_gbp"]["site not yet in scope"] == 0  # every site from 2021


def test_a_store_far_smaller_than_the_price_is_flagged_and_growth_comes_from_its_trend(store: Path) -> None:
    from carecontract.viability.summary import stress_summary

    result = stress_summary(load_terms(CANCER), 2000, 1, store)
    assert any("too far apart to be the same scope" in w for w in result["warnings"])  # 40,000 people, not 800,000
    assert result["sources"]["baseline_cost_gbp"].startswith("store")
    assert result["sources"]["demand_growth"].startswith("data (store: referrals trend 2017–2021")
    assert result["sources"]["cost_inflation"].startswith("data (store: unit cost trend")
    assert result["sources"]["management_cost_share"].startswith("terms")


def test_with_too_few_whole_years_the_terms_growth_stands_and_the_output_says_why(tmp_path: Path) -> None:
    from datetime import date

    from carecontract.records.ingest import ingest
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy
    from carecontract.viability.summary import stress_summary

    files = write_economy(generate(20_000, 2, seed=5, start=date(2017, 4, 1)), tmp_path / "data", "parquet")
    ingest(files, tmp_path / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"few"))
    result = stress_summary(load_terms(CANCER), 1000, 1, tmp_path / "store")
    assert result["sources"]["demand_growth"] == "terms (risks.demand_growth)"
    assert any("2 whole contract year(s)" in w for w in result["warnings"])


def test_appraise_with_a_store_shows_the_scope_split_and_the_sources(store: Path, tmp_path: Path) -> None:
    from carecontract.publish.appraisal import gather_appraisal, render_markdown

    data = gather_appraisal(load_terms(CANCER), store, runs=500, seed=1)
    md = render_markdown(data)
    assert "in scope ÷ price" in md and "out: no tumour site" in md
    assert "data (store: referrals trend" in md
    assert "too far apart to be the same scope" in md
    assert "The risks simulated" in md and "triangular 0.03 to 0.35, mode 0.05" in md
    assert "Measured on the store's first whole contract year (2017-04-01 to 2018-03-31)" in md
    assert [s.key for s in data.sections] == ["strategic", "economic", "commercial", "financial", "management"]


def test_a_hand_worked_waterfall_splits_an_interaction_evenly() -> None:
    """Priced at cost with a 5% management share and £1m mobilisation, nothing else uncertain:
    year 1 is £1m short only when both are on (management alone leaves zero margin; mobilisation
    alone is covered by the £3.435m the management share would have cost). Shapley gives each
    £0.5m; sequentially, whichever is switched on second takes the whole £1m."""
    fixed = [
        "risks.demand_growth=0",
        "risks.cost_inflation=0",
        "risks.demand_shock_probability=0",
        "risks.management_cost_share=0.05",
        "risks.vat_exposed_share=0",
        "risks.outcome_achievement=1",
    ]
    inputs = resolve_inputs(load_terms(CANCER, fixed).contract)
    draws = draw(inputs, 10, 1)
    shapley_split = waterfall(inputs, draws, "shapley")
    assert shapley_split.total_pence == 100_000_000 and shapley_split.base_pence == 0
    assert shapley_split.contributions_pence["management_cost"] == 50_000_000
    assert shapley_split.contributions_pence["mobilisation"] == 50_000_000
    assert sum(abs(v) for v in shapley_split.contributions_pence.values()) == 100_000_000
    sequential = waterfall(inputs, draws, "sequential")  # management is switched on before mobilisation
    assert sequential.contributions_pence["management_cost"] == 0
    assert sequential.contributions_pence["mobilisation"] == 100_000_000


def test_a_hand_worked_break_even_contingency() -> None:
    """The same contract: the £1m first-year shortfall is covered once c × £68.7m × (1 − 5%) ≥ £1m."""
    fixed = [
        "risks.demand_growth=0",
        "risks.cost_inflation=0",
        "risks.demand_shock_probability=0",
        "risks.management_cost_share=0.05",
        "risks.vat_exposed_share=0",
        "risks.outcome_achievement=1",
    ]
    inputs = resolve_inputs(load_terms(CANCER, fixed).contract)
    result = solve_lever(Evaluator(inputs, draw(inputs, 50, 1)), CONTINUOUS[0], 0.10)
    assert result.at_current_terms == 1.0 and result.probability == 0.0
    assert result.value == pytest.approx(1_000_000 / (68_700_000 * 0.95), abs=2e-4)
    assert result.value >= 1_000_000 / (68_700_000 * 0.95)  # on the safe side of the jump
