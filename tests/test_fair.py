"""Fair comparisons: funnel plots with overdispersion, case-mix O/E ratios, Making Data Count SPC.

The worked examples are data beside the tests (tests/data/fair/); the SPC one reproduces
NHSRplotthedots' own published test snapshot exactly.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.measures import casemix, funnel, spc
from carecontract.measures.compute import events_table, sources
from carecontract.measures.stats import Z95, Z998
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store

DATA = Path(__file__).parent / "data" / "fair"


# -- funnel plots


def test_shmi_funnel_worked_example() -> None:
    case = yaml.safe_load((DATA / "funnel_shmi.yaml").read_text())
    units = [(u["unit"], u["observed"], u["expected"]) for u in case["units"]]
    plot = funnel.funnel(units, kind=case["kind"], trim=case["trim"])
    assert plot.phi == pytest.approx(case["expect"]["phi"], abs=1e-6)
    assert plot.tau2 == pytest.approx(case["expect"]["tau2"], abs=1e-7)
    by_unit = {p.unit: p for p in plot.points}
    for unit, (lo95, hi95, lo998, hi998) in case["expect"]["limits"].items():
        got = by_unit[unit].limits
        assert (got.low95, got.high95, got.low998, got.high998) == pytest.approx((lo95, hi95, lo998, hi998), abs=1e-6)
    assert {p.unit: p.alert for p in plot.points if p.alert} == case["expect"]["alerts"]
    assert plot.outliers() == case["expect"]["outliers"]
    plain = funnel.funnel(units, kind="ratio", overdispersion=False)
    assert plain.outliers() == case["expect"]["outliers_without_overdispersion"]


def test_shmi_truncation_reproduces_funnelplotr_published_phi() -> None:
    # FunnelPlotR's own test (tests/testthat/test-classes_methods.R): funnel_plot() with its defaults
    # (standardised ratios, SHMI method, 10% truncation) on these data gives phi 2.948033. Six units
    # fall in rank groups 1..8 of ten, so none is truncated and phi is the mean of all six z².
    case = yaml.safe_load((DATA / "funnel_shmi.yaml").read_text())
    units = [(u["unit"], u["observed"], u["expected"]) for u in case["units"]]
    plot = funnel.funnel(units, kind="ratio", trim="truncate")
    assert round(plot.phi, 6) == 2.948033
    # tau2 by the same formula, its weights E: (6 phi - 5) / (sum E - sum E^2 / sum E)
    assert plot.tau2 == pytest.approx((6 * plot.phi - 5) / (800 - 118858 / 800))  # sum E = 800, sum E² = 118,858
    # with twenty units the lowest and the highest two ranks (groups 0 and 9) are left out
    many = [(f"u{i}", 100 + 3 * i, 100) for i in range(20)]
    kept = sorted(math.sqrt(100) * math.log((100 + 3 * i) / 100) for i in range(20))[2:-2]
    assert funnel.funnel(many, kind="ratio", trim="truncate").phi == pytest.approx(sum(z * z for z in kept) / 16)


def test_none_observed_is_judged_by_its_exact_poisson_chance() -> None:
    # O = 0: P(0 | E) = exp(-E). E = 2: 0.135, no signal; E = 5: 0.0067, an alert (< 0.025) and no
    # outlier (> 0.001); E = 8: 0.00034, an outlier
    units = [("two", 0, 2.0), ("five", 0, 5.0), ("eight", 0, 8.0), ("a", 50, 50.0), ("b", 52, 50.0)]
    points = {p.unit: p for p in funnel.funnel(units, kind="ratio", overdispersion=False).points}
    assert (points["two"].alert, points["two"].outlier) == (None, None)
    assert (points["five"].alert, points["five"].outlier) == ("low", None)
    assert (points["eight"].alert, points["eight"].outlier) == ("low", "low")


def test_proportion_limits_without_overdispersion_are_the_binomial_ones() -> None:
    # 30/100, 50/100, 70/100: pooled 0.5; limits 0.5 ± z·sqrt(0.25/100) = 0.5 ± 0.05z
    plot = funnel.funnel([("a", 30, 100), ("b", 50, 100), ("c", 70, 100)], overdispersion=False)
    assert plot.target == 0.5
    lim = plot.points[0].limits
    assert lim.low95 == pytest.approx(0.5 - 0.05 * Z95)
    assert lim.high998 == pytest.approx(0.5 + 0.05 * Z998)
    assert plot.outliers() == ["a", "c"]  # |z| = 4 > 3.09
    assert [p.outlier for p in plot.points] == ["low", None, "high"]


def test_overdispersion_clears_units_that_only_the_spread_of_the_whole_makes_outliers() -> None:
    # twenty large units with rates spread far wider than binomial noise, one far out
    units = [(f"u{i}", 350 + 25 * (i % 7), 1000) for i in range(20)] + [("far", 800, 1000)]
    plain = funnel.funnel(units, overdispersion=False)
    wide = funnel.funnel(units)
    assert wide.phi > 1 and wide.tau2 > 0
    assert len(plain.outliers()) > len(wide.outliers())
    assert "far" in wide.outliers()


def test_no_spread_means_no_overdispersion() -> None:
    plot = funnel.funnel([(f"u{i}", 50, 100) for i in range(10)])
    assert plot.phi == 0 and plot.tau2 == 0 and not plot.overdispersed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 200)), min_size=3, max_size=15))
def test_overdispersed_limits_contain_the_plain_ones(rows: list[tuple[int, int]]) -> None:
    units = [(f"u{i}", min(n, d), d) for i, (n, d) in enumerate(rows)]
    plain, wide = funnel.funnel(units, overdispersion=False), funnel.funnel(units)
    assert wide.tau2 >= 0
    for p, w in zip(plain.points, wide.points, strict=True):
        assert w.limits.low998 <= p.limits.low998 + 1e-12 and w.limits.high998 >= p.limits.high998 - 1e-12
        assert w.limits.low998 <= w.limits.low95 <= w.limits.high95 <= w.limits.high998
    assert set(wide.outliers()) <= set(plain.outliers())


# -- exact Poisson intervals for O/E


@pytest.mark.parametrize(
    ("observed", "low", "high"),
    # Garwood's exact 95% limits for a Poisson count (the published table, e.g. Ulm 1990)
    [(0, 0.0, 3.6889), (1, 0.0253, 5.5716), (10, 4.7954, 18.3904)],
)
def test_exact_poisson_interval(observed: int, low: float, high: float) -> None:
    assert casemix.exact_poisson(observed) == pytest.approx((low, high), abs=1e-4)


# -- case-mix adjustment, on every engine


def test_casemix_worked_example(engine: str, tmp_path: Path) -> None:
    case = yaml.safe_load((DATA / "casemix_early_stage.yaml").read_text())
    lines = [line.strip() for line in case["events"].splitlines() if line.strip()]
    csv = tmp_path / "events.csv"
    csv.write_text("\n".join(",".join(c.strip() for c in line.split(",")) for line in lines) + "\n")
    result = ingest([csv], tmp_path / "store", key=PseudonymKey(b"fair"), as_of=date(2026, 1, 1))
    assert result.quarantined == 0, result.reasons
    src = sources(events_table(Store(tmp_path / "store"), engine=engine), detail=True)
    start, end = (date.fromisoformat(str(case["period"][k])) for k in ("from", "to"))
    rows = {r["provider"]: r for r in casemix.adjusted_rows(src, "early_stage", start, end, ("provider",))}
    assert set(rows) == set(case["expect"])
    for provider, expect in case["expect"].items():
        row = rows[provider]
        assert row["measure"] == "early_stage_oe"
        for key, value in expect.items():
            assert row[key] == pytest.approx(value, abs=1e-6), (provider, key)
    # indirect standardisation against the whole store: observed and expected totals agree
    assert sum(r["observed"] for r in rows.values()) == pytest.approx(sum(r["expected"] for r in rows.values()))


# -- SPC


def _dates(n: int, first: date = date(2024, 1, 1)) -> list[date]:
    return [first + timedelta(days=31 * i) for i in range(n)]


@pytest.mark.parametrize("name", ["r1", "r2", "r3"])
def test_spc_reproduces_nhsrplotthedots(name: str) -> None:
    data = yaml.safe_load((DATA / "spc_nhsrplotthedots.yaml").read_text())
    case = next(c for c in data["cases"] if c["name"] == name)
    values = list(data["values"])
    for position, value in case["replace"].items():
        values[position - 1] = value  # R is 1-based
    first = date.fromisoformat(str(data["first_date"]))
    chart = spc.xmr(
        [first + timedelta(days=i) for i in range(len(values))],
        values,
        improvement=None,
        screen_outliers=case["screen_outliers"],
    )
    point = chart.points[0]
    assert (point.mean, point.lpl, point.upl) == pytest.approx((case["mean"], case["lpl"], case["upl"]), abs=5e-6)
    assert [i + 1 for i, p in enumerate(chart.points) if p.outside_limits] == case["outside"]


def test_spc_run_of_seven_on_one_side() -> None:
    values = [12, 8] * 4 + [11] * 7  # mean 10.47: seven above it
    chart = spc.xmr(_dates(len(values)), values)
    runs = [p.run for p in chart.points]
    assert runs[-7:] == [True] * 7 and not any(runs[:-7])
    assert chart.points[-1].point_type == "special_cause_improvement"
    assert chart.variation == "improvement_high"
    six = spc.xmr(_dates(len(values) - 1), values[:-1])  # a run of six is not special
    assert not any(p.run for p in six.points)


def test_spc_trend_of_seven() -> None:
    values = [5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7]  # 5 then six rises: 7 points
    chart = spc.xmr(_dates(len(values)), values, improvement="decrease")
    trend = [p.trend for p in chart.points]
    assert trend[-7:] == [True] * 7 and not any(trend[:-7])
    assert chart.points[-1].point_type == "special_cause_concern"  # rising, and lower is better
    shorter = values[:-1]  # 5 then five rises: 6 points
    assert not any(p.trend for p in spc.xmr(_dates(len(shorter)), shorter).points)


def test_spc_two_of_three_only_on_the_same_side() -> None:
    # NHSRplotthedots' own case: symmetric data, two points near opposite limits are common cause
    values = [1.0, -1.0] * 8
    values[14], values[15] = 5.5, -5.5
    chart = spc.xmr(_dates(16), values)
    assert [p.point_type for p in chart.points[-2:]] == ["common_cause", "common_cause"]
    same = [0.5, -0.5] * 12
    same[21] = same[23] = 3.0  # mean 0.29, upl 3.47, two sigma above the mean at 2.41
    flagged = spc.xmr(_dates(24), same)
    assert [i for i, p in enumerate(flagged.points) if p.two_in_three] == [21, 23]
    assert not any(p.outside_limits for p in flagged.points)
    assert flagged.variation == "improvement_high"


def test_spc_assurance_against_the_target() -> None:
    values = [0.80, 0.82, 0.81, 0.79, 0.80, 0.83, 0.81, 0.80]
    assert spc.xmr(_dates(8), values, target=0.70).assurance == "consistently_pass"
    assert spc.xmr(_dates(8), values, target=0.90).assurance == "consistently_fail"
    assert spc.xmr(_dates(8), values, target=0.81).assurance == "inconsistent"
    assert spc.xmr(_dates(8), values, target=0.70, improvement="decrease").assurance == "consistently_fail"
    assert spc.xmr(_dates(8), values).assurance is None


def test_spc_rebases_only_at_recorded_decisions() -> None:
    values = [10, 11, 10, 11, 10, 11, 20, 21, 20, 21, 20, 21]
    dates = _dates(12)
    records = [
        {"kind": "variation", "text": "Rebase cwt_62 from 2024-07-01: new triage service"},
        {"kind": "gate", "text": "rebase cwt_62 from 2024-03-01"},  # not a variation: ignored
        {"kind": "variation", "text": "rebase fds_28 from 2024-03-01"},  # another measure
    ]
    cuts = spc.rebase_dates(records, "cwt_62")
    assert cuts == [date(2024, 7, 1)]
    chart = spc.xmr(dates, values, rebase_at=cuts)
    assert chart.rebased_at == [dates[6]]
    assert chart.points[0].mean == pytest.approx(10.5) and chart.points[-1].mean == pytest.approx(20.5)
    whole = spc.xmr(dates, values)
    assert whole.points[0].mean == pytest.approx(15.5)  # nothing rebases on its own
    assert math.isclose(whole.points[0].mean, whole.points[-1].mean)


# -- the statistical corridor for payment


def test_minimum_detectable_change_pays_nothing_within_random_variation() -> None:
    from carecontract.payments.rules import achievement
    from carecontract.terms.model import Outcome

    plain = Outcome(measure="early_stage", target=0.60, weight=1, threshold=0.50)
    fair = Outcome(measure="early_stage", target=0.60, weight=1, threshold=0.50, minimum_detectable_change=0.03)
    # 0.52 is 0.02 above the threshold: paid 20% plainly, nothing inside the 0.03 corridor
    assert achievement(plain, 0.52) == pytest.approx(0.2)
    assert achievement(fair, 0.52) == 0.0
    # beyond the corridor it is paid from the threshold, as shared savings are from the first pound
    assert achievement(fair, 0.54) == pytest.approx(0.4)
    lower = Outcome(
        measure="emergency_presentation", target=0.15, weight=1, threshold=0.20, minimum_detectable_change=0.03
    )
    assert achievement(lower, 0.18) == 0.0 and achievement(lower, 0.16) == pytest.approx(0.8)


def test_terms_reject_adjustment_that_does_not_exist() -> None:
    from pydantic import ValidationError

    from carecontract.terms.model import Outcome

    with pytest.raises(ValidationError, match="no case-mix adjustment"):
        Outcome(measure="cwt_62", target=0.85, weight=1, basis="adjusted")
    with pytest.raises(ValidationError, match="needs a threshold"):
        Outcome(measure="early_stage", target=0.6, weight=1, minimum_detectable_change=0.02)
    assert Outcome(measure="early_stage", target=0.6, weight=1, basis="adjusted").basis == "adjusted"


# -- the report


def test_the_report_draws_the_adjusted_funnel_and_the_spc_chart(paid_store: Path) -> None:
    from carecontract.publish import fair_charts
    from carecontract.publish.report import gather_report, render_report
    from carecontract.terms import load_terms

    terms = load_terms(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml")
    data = gather_report(terms, paid_store, runs=50)
    figs = fair_charts.figures(data.fair)
    assert set(figs) == {"funnel-early_stage-oe", "spc-cwt_62", "spc-early_stage-adjusted"}
    adjusted_spc = figs["spc-early_stage-adjusted"]
    assert "case-mix adjusted" in adjusted_spc.layout.title.text
    assert adjusted_spc.layout.yaxis.tickformat == ".0%" and "adjusted" in adjusted_spc.layout.yaxis.title.text
    funnel_fig = figs["funnel-early_stage-oe"]
    legend = {t.name for t in funnel_fig.data if t.showlegend is not False}
    assert {"95% limits", "99.8% limits", "as expected (1.0)"} <= legend
    labels = {a.text for a in funnel_fig.layout.annotations}
    assert {"95% limits", "99.8% limits"} <= labels  # the limits are labelled on the chart itself
    assert funnel_fig.layout.xaxis.title.text and funnel_fig.layout.yaxis.title.text == "observed / expected"
    spc_fig = figs["spc-cwt_62"]
    assert spc_fig.layout.yaxis.tickformat == ".0%" and spc_fig.layout.xaxis.title.text == "month"
    assert {"mean", "lower process limit", "upper process limit"} <= {t.name for t in spc_fig.data}
    text = render_report(data)
    assert "<h3>Fair comparisons</h3>" in text and 'id="spc-cwt_62"' in text
    public = gather_report(terms, paid_store, public=True, runs=50)
    assert public.fair == {} and "<h3>Fair comparisons</h3>" not in render_report(public)


# -- the command line


def test_cli_adjusted_and_spc(paid_store: Path, tmp_path: Path) -> None:

    from typer.testing import CliRunner

    from carecontract.cli import app
    from carecontract.publish.decisions import DecisionLog

    runner = CliRunner()
    period = ["--store", str(paid_store), "--from", "2017-04-01", "--to", "2020-03-31"]
    out = runner.invoke(app, ["measures", *period, "--adjusted", "--only", "early_stage", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {r["measure"] for r in rows} == {"early_stage", "early_stage_oe"}  # raw and adjusted side by side
    adjusted = [r for r in rows if r["measure"] == "early_stage_oe"]
    assert all("provider" in r and r["expected"] > 0 for r in adjusted)
    table = runner.invoke(app, ["measures", *period, "--adjusted", "--only", "early_stage"])
    assert table.exit_code == 0 and "Case-mix adjusted" in table.output and "early_stage_oe" in table.output
    log = DecisionLog(tmp_path / "decisions.jsonl")
    log.append("variation", "rebase cwt_62 from 2018-10-01: new pathway", "Staffordshire cancer care", "fp")
    out = runner.invoke(app, ["spc", *period, "--measure", "cwt_62", "--log", str(log.path), "--json"])
    assert out.exit_code == 0, out.output
    months = json.loads(out.output)
    means = {m["month"]: m["mean"] for m in months}
    before = [v for k, v in means.items() if k < "2018-10-01"]
    after = [v for k, v in means.items() if k >= "2018-10-01"]
    assert len(set(before)) == 1 and len(set(after)) == 1  # one mean per segment, split at the decision only
    assert months[0]["target"] == 0.85 and months[0]["assurance"] in {
        "consistently_pass",
        "consistently_fail",
        "inconsistent",
    }
    text = runner.invoke(
        app,
        [
            "spc",
            str(Path(__file__).parent.parent / "contracts" / "staffordshire-cancer.yaml"),
            *period,
            "--measure",
            "cwt_62",
        ],
    )
    assert text.exit_code == 0 and "Variation:" in text.output
    bad = runner.invoke(app, ["spc", *period, "--measure", "equity_gap"])
    assert bad.exit_code == 2 and "no monthly series" in bad.output and "Traceback" not in bad.output
    both = runner.invoke(app, ["measures", *period, "--adjusted", "--public", "--json"])
    assert both.exit_code == 0, both.output
    public = [r for r in json.loads(both.output) if r["measure"].endswith("_oe")]
    assert public and all(r["suppressed"] or (r["observed"] % 5 == 0 and r["expected"] >= 8) for r in public)
    adjusted_spc = runner.invoke(app, ["spc", *period, "--measure", "early_stage", "--adjusted", "--json"])
    assert adjusted_spc.exit_code == 0 and {r["basis"] for r in json.loads(adjusted_spc.output)} == {"adjusted"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=30),
    st.floats(-50, 50, allow_nan=False),
)
def test_spc_limits_move_with_the_data(values: list[float], shift: float) -> None:
    dates = _dates(len(values))
    chart = spc.xmr(dates, values)
    moved = spc.xmr(dates, [v + shift for v in values])
    p, q = chart.points[0], moved.points[0]
    assert p.mean == pytest.approx(sum(values) / len(values), abs=1e-9)
    assert p.upl - p.mean == pytest.approx(p.mean - p.lpl, abs=1e-9)  # symmetric about the mean
    assert (q.mean, q.lpl, q.upl) == pytest.approx((p.mean + shift, p.lpl + shift, p.upl + shift), abs=1e-6)


def test_adjusted_counts_agree_with_the_raw_measures(paid_store: Path) -> None:
    """Every case is counted once: the adjusted rows' cases and observed counts add up to the raw
    measure's denominator and numerator (computed by compute_measures, not casemix), and E to O."""
    from carecontract.measures.compute import compute_measures

    start, end = date(2017, 4, 1), date(2020, 3, 31)
    src = sources(events_table(Store(paid_store)), detail=True)
    try:
        raw = {r["measure"]: r for r in compute_measures(paid_store, start, end, only=list(casemix.ADJUSTED))}
        for measure in casemix.ADJUSTED:
            rows = casemix.adjusted_rows(src, measure, start, end, ("provider",))
            assert sum(r["denominator"] for r in rows) == raw[measure]["denominator"], measure
            assert sum(r["observed"] for r in rows) == raw[measure]["numerator"], measure
            assert sum(r["expected"] for r in rows) == pytest.approx(raw[measure]["numerator"], abs=1e-3), measure
            for r in rows:
                assert r["raw_rate"] == pytest.approx(r["observed"] / r["denominator"])
                assert r["ci_low"] is None or r["ci_low"] <= r["ratio"] <= r["ci_high"]
    finally:
        src.release()


def test_spc_chart_shows_a_score_as_a_score() -> None:
    from carecontract.publish.fair_charts import spc_figure

    chart = spc.xmr(_dates(6), [8.1, 8.3, 8.2, 8.4, 8.0, 8.2], target=8.8)
    fig = spc_figure(chart, "patient_experience")
    assert fig.layout.yaxis.tickformat == ".2f" and fig.layout.yaxis.title.text == "mean score"
    assert any("target 8.80" in (a.text or "") for a in fig.layout.annotations)
    rate_fig = spc_figure(spc.xmr(_dates(6), [0.7, 0.8, 0.75, 0.72, 0.78, 0.74], target=0.85), "cwt_62")
    assert rate_fig.layout.yaxis.tickformat == ".0%"


# -- the synthetic economy's deliberate case-mix difference (rates.yaml ``case_mix``)


@pytest.fixture(scope="module")
def demo_economy(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """The demo's economy (1.1 million people, 3 years, seed 2026) on fixed dates, ingested."""
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    out = tmp_path_factory.mktemp("demo-economy")
    economy = generate(1_100_000, 3, seed=2026, start=date(2022, 4, 1))
    files = write_economy(economy, out / "data", "parquet")
    ingest(files, out / "store", as_of=date(2026, 1, 1), key=PseudonymKey(b"fair"))
    return economy, out / "store"


def test_one_provider_treats_older_more_deprived_patients(demo_economy: tuple[object, Path]) -> None:
    # counted from the generated table itself, not by the code under test
    import duckdb

    economy, _ = demo_economy
    events = economy.events  # noqa: F841 (read by DuckDB below)
    old_deprived = dict(
        duckdb.sql(
            "SELECT provider_code = 'RBT', avg(CASE WHEN age >= 70 AND imd_quintile <= 2 THEN 1 ELSE 0 END) "
            "FROM events WHERE event_type = 'diagnosis' AND provider_code IN ('RBT', 'RJE', 'RL4') GROUP BY 1"
        ).fetchall()
    )
    assert old_deprived[True] > 2 * old_deprived[False]


def test_adjustment_clears_the_case_mix_outlier_and_keeps_the_real_one(demo_economy: tuple[object, Path]) -> None:
    from carecontract.measures.fair import adjusted
    from carecontract.run import Run

    _, store = demo_economy
    run = Run(store)
    first, last = date(2022, 4, 1), date(2025, 3, 31)
    raw = {(r["measure"], r["provider"]): r for r in run.measures(first, last, by=["provider"])}
    adj = {
        (r["base_measure"], r["provider"]): r
        for r in adjusted(
            run.sources(detail=True), first, last, ("provider",), ["early_stage", "emergency_presentation"]
        )
    }

    def flagged(measure: str, provider: str) -> tuple[bool, bool]:
        return raw[(measure, provider)]["funnel"]["outlier"], adj[(measure, provider)]["funnel"]["outlier"] is not None

    # RBT: more emergencies than the area's rate, all explained by its older, more deprived patients
    assert flagged("emergency_presentation", "RBT") == (True, False)
    assert raw[("emergency_presentation", "RBT")]["rate"] > raw[("emergency_presentation", "RJE")]["rate"]
    assert 0.9 < adj[("emergency_presentation", "RBT")]["ratio"] < 1.1
    # RXW: fewer early-stage diagnoses than its patients would have elsewhere: an outlier either way
    assert flagged("early_stage", "RXW") == (True, True)
    assert adj[("early_stage", "RXW")]["funnel"]["outlier"] == "low"
    # nobody else is an outlier on either measure, raw or adjusted
    others = {
        k
        for k in raw
        if k[0] in ("early_stage", "emergency_presentation")
        and raw[k]["funnel"]["outlier"]
        and k[1] not in ("RBT", "RXW")
    }
    others |= {k for k, r in adj.items() if r["funnel"]["outlier"] and k[1] != "RXW"}
    assert others == set()


def test_adjusted_spc_points_count_the_raw_months(paid_store: Path) -> None:
    from carecontract.measures import series
    from carecontract.measures.fair import spc_chart, spc_rows
    from carecontract.run import Run

    src = Run(paid_store).sources(detail=True)
    first, last = date(2017, 4, 1), date(2019, 3, 31)
    adjusted = casemix.monthly(src, "early_stage", first, last)
    raw = series.monthly(src, "early_stage", first, last)
    # the same cases each month, counted by the raw series' own code
    assert [(r["month"], r["observed"], r["cases"]) for r in adjusted] == [
        (r["month"], int(r["numerator"]), r["denominator"]) for r in raw
    ]
    # against the whole period's own stratum rates, the expected counts add up to the observed ones
    assert sum(r["expected"] for r in adjusted) == pytest.approx(sum(r["observed"] for r in adjusted))
    rows = spc_rows(spc_chart(src, "early_stage", first, last, adjusted=True), "early_stage", adjusted=True)
    assert {r["basis"] for r in rows} == {"adjusted"}
    assert [r["value"] for r in rows] == pytest.approx([r["rate"] for r in adjusted if r["rate"] is not None])
    with pytest.raises(casemix_error()):
        spc_chart(src, "cwt_62", first, last, adjusted=True)


def casemix_error() -> type[Exception]:
    from carecontract.measures.compute import MeasureError

    return MeasureError


# -- the public's fair comparisons, attacked as test_attacks.py attacks the measures


@pytest.fixture(scope="module")
def public_client(paid_store: Path):
    from fastapi.testclient import TestClient

    from carecontract.service.access import Principal, Tokens
    from carecontract.service.app import create_app
    from carecontract.terms import load_terms
    from tests.conftest import CANCER_TERMS

    tokens = Tokens({"t-audit": Principal("auditor")})
    return TestClient(create_app(paid_store, [load_terms(CANCER_TERMS)], tokens, stress_runs=50))


PUBLIC_PERIOD = {"from": "2017-04-01", "to": "2018-03-31"}
SLUG = "/api/contracts/staffordshire-cancer-care"


@pytest.mark.parametrize("adjusted", [False, True])
def test_public_spc_months_give_back_no_small_count(public_client, paid_store: Path, adjusted: bool) -> None:
    from carecontract.measures import series
    from carecontract.publish.disclosure import THRESHOLD
    from carecontract.run import Run

    params = {**PUBLIC_PERIOD, "measure": "early_stage", "adjusted": str(adjusted).lower()}
    months = public_client.get(f"{SLUG}/spc", params=params).json()
    assert len(months) == 12
    truth = {
        p["month"].isoformat(): p
        for p in series.monthly(Run(paid_store).sources(), "early_stage", date(2017, 4, 1), date(2018, 3, 31))
    }
    hidden = [m for m in months if m["suppressed"]]
    for m in months:
        if not m["suppressed"]:
            true = truth[m["month"]]
            assert m["numerator"] % 5 == 0 and m["denominator"] % 5 == 0
            assert true["numerator"] >= THRESHOLD and true["denominator"] - true["numerator"] >= THRESHOLD
            assert abs(m["numerator"] - true["numerator"]) <= 2
    # the intruder subtracts the shown months from the period's published total: no lone small month
    for part in (lambda p: p["denominator"], lambda p: p["numerator"], lambda p: p["denominator"] - p["numerator"]):
        under = [part(truth[m["month"]]) for m in hidden]
        assert (len(under) >= 2 and sum(under) >= THRESHOLD) or all(v >= THRESHOLD for v in under)
    # the mean and limits are the shown months' own: nothing of a suppressed month is in them
    shown = [m["value"] for m in months if m["value"] is not None]
    for m in months:
        assert (m["mean"] is None) == (m["value"] is None)
        if m["value"] is not None:
            assert m["mean"] == pytest.approx(sum(shown) / len(shown))


def test_public_spc_is_for_published_periods_and_the_whole_contract_only(public_client) -> None:
    ask = {"measure": "early_stage"}
    assert public_client.get(f"{SLUG}/spc", params={**ask, "from": "2017-04-02", "to": "2018-03-31"}).status_code == 422
    assert public_client.get(f"{SLUG}/spc", params={**ask, **PUBLIC_PERIOD, "provider": "RJE"}).status_code == 403


def test_public_adjusted_ratios_rest_on_the_published_counts(public_client) -> None:
    from carecontract.publish.disclosure import THRESHOLD

    rows = public_client.get(f"{SLUG}/adjusted", params={**PUBLIC_PERIOD, "measure": "early_stage"}).json()
    published = {
        r["provider"]: r
        for r in public_client.get(f"{SLUG}/measures", params={**PUBLIC_PERIOD, "by": "provider"}).json()
        if r["measure"] == "early_stage"
    }
    assert rows and {r["provider"] for r in rows} <= set(published)
    for r in rows:
        if published[r["provider"]]["suppressed"]:
            assert r["suppressed"] and r["ratio"] is None and r["observed"] is None
        if not r["suppressed"]:
            assert r["observed"] == published[r["provider"]]["numerator"]
            assert r["expected"] >= THRESHOLD and round(r["ratio"] * r["expected"]) == r["observed"]
