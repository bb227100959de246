"""Outcome measures on hand-built pathways: every clock rule, each boundary, missing events, pauses."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecontract.measures import stats
from carecontract.measures.compute import MeasureError, compute_measures
from carecontract.measures.definitions import MEASURE_IDS
from carecontract.measures.explain import explain
from carecontract.records import nhs_number
from carecontract.records.ingest import ingest
from tests.conftest import write_csv

D0 = date(2024, 1, 1)
AS_OF = date(2026, 1, 1)
YEAR = (date(2020, 1, 1), date(2025, 12, 31))


def nhs(i: int) -> str:
    """The i-th valid NHS number in the never-issued 900 range."""
    prefix = 900_000_000 + i * 7
    while nhs_number.check_digit(str(prefix)) is None:
        prefix += 1
    return f"{prefix}{nhs_number.check_digit(str(prefix))}"


class Builder:
    """Rows of hand-built pathways: ``event(...)`` with day offsets from D0."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def event(self, patient: int, kind: str, day: int, provider: str = "RJE", **extra: object) -> str:
        record_id = f"p{patient}-{kind}-{day}-{len(self.rows)}"
        when = (D0 + timedelta(days=day)).isoformat()
        row = {
            "record_id": record_id,
            "nhs_number": nhs(patient),
            "event_date": when,
            "event_type": kind,
            "provider_code": provider,
            "commissioner_code": "05D",
            "imd_quintile": "3",
        }
        row.update({k: str(v) for k, v in extra.items()})
        self.rows.append(row)
        return record_id

    def referral(self, patient: int, day: int = 0, route: str = "urgent_gp", **extra: object) -> str:
        return self.event(patient, "referral", day, referral_route=route, **extra)

    def store(self, tmp_path: Path) -> Path:
        result = ingest([write_csv(tmp_path / "in.csv", self.rows)], tmp_path / "store", as_of=AS_OF)
        assert result.quarantined == 0, result.reasons
        return tmp_path / "store"


def rates(store: Path, measure: str, start: date = YEAR[0], end: date = YEAR[1], **kw: object) -> dict:
    rows = compute_measures(store, start, end, only=[measure], **kw)
    return {k: rows[0][k] for k in ("numerator", "denominator")} if len(rows) == 1 else rows


def test_fds_28_boundary_and_first_stop(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1)
    b.event(1, "diagnosis", 28, icd10="C34.1", stage=2)  # day 28: met
    b.referral(2)
    b.event(2, "diagnosis", 29, icd10="C34.1", stage=2)  # day 29: not met
    b.referral(3)
    b.event(3, "cancer_ruled_out", 10)  # ruled out on day 10: met
    b.referral(4)
    b.event(4, "cancer_ruled_out", 20)
    b.event(4, "diagnosis", 40, icd10="C50.1")  # the first of the two stops the clock: day 20, met
    b.referral(5, route="emergency")  # not an urgent referral: outside the FDS population
    b.event(5, "diagnosis", 40, icd10="C50.1")
    b.referral(6)  # no outcome yet: the clock has not stopped, not counted
    b.referral(7, route="screening")
    b.event(7, "diagnosis", 30, icd10="C50.1")  # screening is in, day 30: not met
    assert rates(b.store(tmp_path), "fds_28") == {"numerator": 3, "denominator": 5}  # patients 1, 2, 3, 4, 7


def test_a_pathway_counts_in_the_period_its_clock_stops(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1, day=20)  # 21 January
    b.event(1, "cancer_ruled_out", 35)  # 5 February
    store = b.store(tmp_path)
    assert rates(store, "fds_28", date(2024, 1, 1), date(2024, 1, 31)) == {"numerator": 0, "denominator": 0}
    assert rates(store, "fds_28", date(2024, 2, 1), date(2024, 2, 29)) == {"numerator": 1, "denominator": 1}
    assert rates(store, "fds_28", date(2024, 2, 5), date(2024, 2, 5)) == {"numerator": 1, "denominator": 1}


def test_cwt_31_boundary_and_each_treatment_needs_its_decision(tmp_path: Path) -> None:
    b = Builder()
    for patient, gap in ((1, 31), (2, 32), (3, 0)):
        b.referral(patient)
        b.event(patient, "diagnosis", 10, icd10="C61")
        b.event(patient, "decision_to_treat", 20)
        b.event(patient, "treatment", 20 + gap, modality="surgery")
    b.event(2, "treatment", 200, modality="radiotherapy")  # a second treatment with no second decision: no case
    b.referral(4)
    b.event(4, "decision_to_treat", 20)  # no treatment yet: not in the denominator
    b.referral(5)
    b.event(5, "treatment", 15, modality="surgery")  # no decision to treat recorded: not in the denominator
    assert rates(b.store(tmp_path), "cwt_31") == {"numerator": 2, "denominator": 3}


def test_cwt_62_boundary_routes_and_pauses(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1)
    b.event(1, "treatment", 62, modality="surgery")  # day 62: met
    b.referral(2)
    b.event(2, "treatment", 63, modality="surgery")  # day 63: not met
    b.referral(3)
    b.event(3, "decision_to_treat", 25)
    b.event(3, "clock_adjustment", 30, adjustment_days=10)  # a treatment adjustment: after the decision
    b.event(3, "treatment", 72, modality="surgery")  # 72 - 10 paused = 62: met
    b.referral(4)
    b.event(4, "decision_to_treat", 25)
    b.event(4, "clock_adjustment", 30, adjustment_days=5)
    b.event(4, "clock_adjustment", 40, adjustment_days=5)
    b.event(4, "treatment", 73, modality="surgery")  # 73 - 10 = 63: not met (pauses add up)
    b.referral(5, route="upgrade")
    b.event(5, "treatment", 50, modality="chemotherapy")  # consultant upgrade is in: met
    b.referral(6, route="other")
    b.event(6, "treatment", 10, modality="surgery")  # routine referral: outside the 62-day population
    b.referral(7, route="emergency")
    b.event(7, "treatment", 10, modality="surgery")  # emergency: outside
    b.referral(8)  # never treated: not counted
    assert rates(b.store(tmp_path), "cwt_62") == {"numerator": 3, "denominator": 5}


def test_a_new_referral_starts_a_new_pathway(tmp_path: Path) -> None:
    b = Builder()
    first = b.referral(1, day=0)
    b.event(1, "cancer_ruled_out", 40)  # first pathway: 40 days, not met
    second = b.referral(1, day=100)
    b.event(1, "cancer_ruled_out", 110)  # second pathway: 10 days, met
    store = b.store(tmp_path)
    assert rates(store, "fds_28") == {"numerator": 1, "denominator": 2}
    assert explain("fds_28", store, first)["clock_days"] == 40
    assert explain("fds_28", store, second)["clock_days"] == 10
    assert [e["event_type"] for e in explain("fds_28", store, first)["events"]] == ["referral", "cancer_ruled_out"]


def test_stage_emergency_survival_with_follow_up(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1)
    b.event(1, "diagnosis", 5, icd10="C34.1", stage=1)
    b.event(1, "death", 5 + 365, place_of_death="hospital", usual_residence="home")  # day 365: did not survive a year
    b.referral(2, route="emergency")
    b.event(2, "diagnosis", 5, icd10="C34.1", stage=4)
    b.event(2, "death", 5 + 366, place_of_death="home", usual_residence="home")  # survived one year
    b.referral(3)
    b.event(3, "diagnosis", 5, icd10="C50.1")  # unstaged: not in early_stage; alive
    b.referral(4)
    b.event(4, "diagnosis", 600, icd10="C50.1", stage=2)  # too recent for a full year's follow-up
    b.event(5, "patient_experience", 700, score=7)  # last event in the data: the censoring date
    store = b.store(tmp_path)
    assert rates(store, "early_stage") == {"numerator": 2, "denominator": 3}
    assert rates(store, "emergency_presentation") == {"numerator": 1, "denominator": 4}
    assert rates(store, "observed_survival_1y") == {"numerator": 2, "denominator": 3}
    assert rates(store, "usual_place_of_death") == {"numerator": 1, "denominator": 2}


def test_patient_experience_is_a_mean_with_an_interval(tmp_path: Path) -> None:
    b = Builder()
    for i, score in enumerate([6, 8, 10]):
        b.event(i, "patient_experience", 10, score=score)
    row = compute_measures(b.store(tmp_path), *YEAR, only=["patient_experience"])[0]
    assert (row["rate"], row["denominator"]) == (8.0, 3)
    assert row["ci_low"] < 8.0 < row["ci_high"]


def test_equity_gap_compares_least_and_most_deprived(tmp_path: Path) -> None:
    b = Builder()
    stages = {1: [1, 3, 4, 4], 5: [1, 2, 2, 3]}  # most deprived 1/4 early, least deprived 3/4 early
    for quintile, patient_stages in stages.items():
        for j, stage in enumerate(patient_stages):
            patient = quintile * 10 + j
            b.referral(patient, imd_quintile=quintile)
            b.event(patient, "diagnosis", 5, icd10="C18.7", stage=stage, imd_quintile=quintile)
    row = compute_measures(b.store(tmp_path), *YEAR, only=["equity_gap"], targets={"equity_gap": 0.1})[0]
    assert row["rate"] == pytest.approx(0.5)
    assert row["met"] is False
    assert row["most_deprived"] == {"numerator": 1, "denominator": 4}


def test_breakdowns_targets_and_funnel(tmp_path: Path) -> None:
    b = Builder()
    for patient in range(10):
        b.referral(patient)
        provider = "RJE" if patient < 6 else "RL4"
        b.event(patient, "treatment", 40 if patient % 2 else 80, provider=provider, modality="surgery")
    rows = compute_measures(b.store(tmp_path), *YEAR, by=["provider"], only=["cwt_62"], targets={"cwt_62": 0.4})
    by_provider = {r["provider"]: r for r in rows}
    assert {p: (r["numerator"], r["denominator"]) for p, r in by_provider.items()} == {"RJE": (3, 6), "RL4": (2, 4)}
    assert all(r["target"] == 0.4 and r["met"] for r in rows)
    funnel = by_provider["RL4"]["funnel"]
    assert funnel["overall"] == 0.5 and funnel["limits_95"][0] < 0.5 < funnel["limits_95"][1]
    assert funnel["limits_998"][0] <= funnel["limits_95"][0]


def test_explain_says_why(tmp_path: Path) -> None:
    b = Builder()
    pid = b.referral(1)
    b.event(1, "decision_to_treat", 10)
    b.event(1, "clock_adjustment", 20, adjustment_days=7)
    b.event(1, "treatment", 70, modality="surgery")
    b.event(1, "clock_adjustment", 80, adjustment_days=30)  # after the treatment: changes nothing
    store = b.store(tmp_path)
    why = explain("cwt_62", store, pid)
    assert (why["clock_start"], why["clock_stop"], why["pauses_days"], why["clock_days"]) == (
        D0,
        D0 + timedelta(days=70),
        7,
        63,
    )
    assert why["counted_value"] is False and "not met" in why["explanation"]
    assert "70 calendar day(s), less 7 day(s) of adjustments inside the clock = 63 day(s)" in why["explanation"]
    thirty_one = explain("cwt_31", store, pid)  # one case per treatment, each with its own sentence
    assert [c["clock_days"] for c in thirty_one["cases"]] == [53]
    assert "Treatment 1:" in thirty_one["explanation"]
    assert "outside" in explain("fds_28", store, pid)["explanation"]  # no diagnosis or ruling-out yet
    with pytest.raises(MeasureError, match="no pathway"):
        explain("cwt_62", store, "nope")


def test_bad_requests_are_clear(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1)
    store = b.store(tmp_path)
    with pytest.raises(MeasureError, match="unknown breakdown"):
        compute_measures(store, *YEAR, by=["ward"])
    with pytest.raises(MeasureError, match="unknown measure"):
        compute_measures(store, *YEAR, only=["cwt_99"])
    with pytest.raises(MeasureError, match="after"):
        compute_measures(store, YEAR[1], YEAR[0])


# -- statistics --------------------------------------------------------------------------------
def test_wilson_known_values() -> None:
    low, high = stats.wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = stats.wilson(0, 10)
    assert (low, round(high, 4)) == (0.0, 0.2775)
    assert stats.wilson(0, 0) == (None, None)


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_wilson_stays_in_unit_interval_and_contains_the_rate(numerator: int, denominator: int) -> None:
    numerator = min(numerator, denominator)
    low, high = stats.wilson(numerator, denominator)
    assert 0.0 <= low <= numerator / denominator <= high <= 1.0


@given(st.integers(0, 500), st.integers(1, 500), st.integers(0, 500), st.integers(1, 500))
def test_newcombe_contains_the_difference(n1: int, d1: int, n2: int, d2: int) -> None:
    n1, n2 = min(n1, d1), min(n2, d2)
    low, high = stats.newcombe(n1, d1, n2, d2)
    assert -1.0 <= low <= n1 / d1 - n2 / d2 <= high <= 1.0


# -- on the synthetic economy ------------------------------------------------------------------
@pytest.fixture(scope="module")
def economy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from carecontract.records.pseudonymise import PseudonymKey
    from carecontract.synth.economy import generate
    from carecontract.synth.writer import write_economy

    out = tmp_path_factory.mktemp("economy")
    files = write_economy(generate(300_000, 3, seed=8, start=date(2021, 4, 1), error_rate=0.01), out / "data")
    ingest(files, out / "store", as_of=AS_OF, key=PseudonymKey(b"measures"))
    return out / "store"


def test_synthetic_measures_land_near_the_calibration(economy_store: Path) -> None:
    rows = compute_measures(
        economy_store,
        date(2022, 4, 1),
        date(2024, 3, 31),
        by=["tumour_site"],
        only=["early_stage", "observed_survival_1y"],
    )
    rate = {(r["measure"], r["tumour_site"]): r["rate"] for r in rows}
    assert rate["early_stage", "lung"] < 0.4 < 0.7 < rate["early_stage", "breast"]
    assert 0.3 < rate["observed_survival_1y", "lung"] < 0.55 < 0.9 < rate["observed_survival_1y", "breast"]
    overall = {r["measure"]: r for r in compute_measures(economy_store, date(2022, 4, 1), date(2024, 3, 31))}
    assert 0.7 < overall["fds_28"]["rate"] < 0.9
    assert 0.6 < overall["cwt_62"]["rate"] < 0.85 < overall["cwt_31"]["rate"] + 0.1
    assert overall["equity_gap"]["rate"] > 0  # the most deprived are diagnosed later


def test_every_proportion_is_in_the_unit_interval(economy_store: Path) -> None:
    rows = compute_measures(economy_store, date(2021, 4, 1), date(2024, 3, 31), by=["commissioner", "provider"])
    for r in rows:
        if r["measure"] not in ("patient_experience", "equity_gap") and r["denominator"]:
            assert 0 <= r["ci_low"] <= r["rate"] <= r["ci_high"] <= 1
            assert 0 <= r["numerator"] <= r["denominator"]


def test_explain_agrees_with_the_count(economy_store: Path) -> None:
    from carecontract.records.store import Store

    con = Store(economy_store).connect()
    query = "SELECT record_id FROM events WHERE event_type = 'referral' ORDER BY record_id LIMIT 30"
    sample = [r[0] for r in con.execute(query).fetchall()]
    for measure in ("fds_28", "cwt_62"):
        explained = [explain(measure, economy_store, pid) for pid in sample[:30]]
        counted = [e for e in explained if e["in_denominator"]]
        assert counted, measure
        for e in counted:
            assert e["counted_value"] == (e["clock_days"] <= (28 if measure == "fds_28" else 62))


def test_every_measure_reports_an_overall_row_even_with_nothing_to_count(tmp_path: Path) -> None:
    b = Builder()
    b.referral(1)
    rows = compute_measures(b.store(tmp_path), *YEAR)
    assert [r["measure"] for r in rows] == list(MEASURE_IDS)
    assert all(r["rate"] is None and r["met"] is None for r in rows if r["denominator"] == 0)


def test_measure_ids_and_directions_have_one_home() -> None:
    """Each id and direction is written once, in its definition; the terms read the same table."""
    from carecontract.measures import definitions
    from carecontract.terms import model

    defs = definitions.measures()
    assert tuple(defs) == definitions.MEASURE_IDS
    assert {m.id: m.higher_is_better for m in defs.values()} == definitions.HIGHER_IS_BETTER
    assert model.MEASURES is definitions.HIGHER_IS_BETTER  # the same object, not an equal copy
    package = Path(definitions.__file__).parent.parent
    for path in package.rglob("*.py"):
        if path == Path(definitions.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if isinstance(node, (ast.Dict, ast.Tuple, ast.List, ast.Set)) and items:
                named = {i.value for i in items if isinstance(i, ast.Constant) and i.value in definitions.MEASURE_IDS}
                assert len(named) < 4, f"{path}:{node.lineno} lists measure ids again: read them from definitions"


def test_a_run_computes_each_request_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carecontract import run as run_module
    from carecontract.run import Run

    b = Builder()
    b.referral(1)
    b.event(1, "diagnosis", 20, icd10="C34.1", stage=1, provider="RL4")
    store = b.store(tmp_path)
    calls: list[tuple] = []

    def counted(*args: object, **kwargs: object) -> list[dict]:
        calls.append(args)
        return compute_measures(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "compute_measures", counted)
    run = Run(store)
    first = run.measures(*YEAR, only=["fds_28", "early_stage"])
    assert first == compute_measures(store, *YEAR, only=["fds_28", "early_stage"])
    first[0]["rate"] = -1.0  # each caller gets its own copy
    assert run.measures(*YEAR, only=["fds_28", "early_stage"])[0]["rate"] != -1.0
    assert len(calls) == 1 and run.events is run.events
    by_provider = run.measures(*YEAR, by=["provider"], only=["early_stage"])
    assert by_provider == compute_measures(store, *YEAR, by=["provider"], only=["early_stage"])
    assert len(calls) == 2 and run.sources().detail  # providers built once asked for, then reused
    with pytest.raises(MeasureError, match="unknown measure"):
        run.measures(*YEAR, only=["fds_29"])
    other = run.with_terms(None)  # other terms, same data: nothing computed again
    assert other.measures(*YEAR, by=["provider"], only=["early_stage"]) == by_provider and len(calls) == 2


# -- the national rules: pathways, the quality flag, dated targets -------------------------------
KINDS = ("referral", "diagnosis", "cancer_ruled_out", "treatment", "first_seen")


def _openers_by_hand(events: list[tuple[int, str, str]]) -> list[str]:
    """The record ids that open a pathway, by walking the events one by one (an independent count)."""
    rank = {"referral": 0, "diagnosis": 1}
    ordered = sorted(events, key=lambda e: (e[0], rank.get(e[1], 2), e[2]))
    opened, open_now = [], False
    for _day, kind, record_id in ordered:
        if kind in ("referral", "diagnosis") and not open_now:
            opened.append(record_id)
            open_now = True
        elif kind in ("cancer_ruled_out", "treatment"):
            open_now = False
    return opened


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.sampled_from(KINDS)), min_size=1, max_size=25))
def test_pathways_open_only_when_the_last_one_has_ended(steps: list[tuple[int, str]]) -> None:
    """A referral or a diagnosis opens a pathway exactly when none is open: the window rule agrees
    with a walk through the events, and every other event lands in the pathway open on its day."""
    import ibis

    from carecontract.measures.pathways import pathway_starts

    events = [(day, kind, f"r{i:03d}") for i, (day, kind) in enumerate(steps)]
    table = ibis.memtable(
        {
            "patient_id": ["p"] * len(events),
            "record_id": [e[2] for e in events],
            "event_date": [D0 + timedelta(days=e[0]) for e in events],
            "event_type": [e[1] for e in events],
            "referral_route": ["urgent_gp"] * len(events),
            "commissioner_code": ["05D"] * len(events),
            "provider_code": ["RJE"] * len(events),
            "imd_quintile": [3] * len(events),
        }
    )
    starts = pathway_starts(table).to_pyarrow().to_pylist()
    assert sorted(s["pathway_id"] for s in starts) == sorted(_openers_by_hand(events))


def test_a_treatment_before_its_decision_counts_zero_days_and_is_flagged(tmp_path: Path) -> None:
    from carecontract.run import Run

    b = Builder()
    pid = b.referral(1)
    b.event(1, "treatment", 30, modality="surgery")
    b.event(1, "decision_to_treat", 35)  # recorded after the treatment it led to
    b.referral(2)
    b.event(2, "decision_to_treat", 10)
    b.event(2, "treatment", 20, modality="surgery")
    store = b.store(tmp_path)
    assert rates(store, "cwt_31") == {"numerator": 2, "denominator": 2}
    why = explain("cwt_31", store, pid)
    assert (why["calendar_days"], why["clock_days"]) == (-5, 0)
    assert "counts as 0 days" in why["explanation"]
    assert Run(store).quality_report()["pathways"] == {"treatment_before_decision": 1}


def test_default_targets_come_from_the_dated_table(tmp_path: Path) -> None:
    from carecontract.measures import standards

    assert standards.standard("fds_28", date(2026, 2, 28)) == 0.75
    assert standards.standard("fds_28", date(2026, 3, 1)) == 0.80
    assert standards.standard("cwt_62", date(2019, 1, 1)) == 0.85  # the same threshold before October 2023
    assert standards.operational("cwt_62", date(2025, 3, 31)) == 0.70
    assert standards.operational("cwt_62", date(2026, 3, 31)) == 0.75
    assert standards.operational("cwt_62", date(2024, 3, 31)) is None
    assert standards.standard("early_stage", date(2025, 1, 1)) is None
    b = Builder()
    b.referral(1)
    b.event(1, "treatment", 10, modality="surgery")
    store = b.store(tmp_path)
    row = compute_measures(store, date(2023, 4, 1), date(2024, 3, 31), only=["cwt_62"])[0]
    assert (row["target"], "operational_target" in row) == (0.85, False)
    row = compute_measures(store, *YEAR, only=["cwt_62"])[0]
    assert (row["target"], row["operational_target"]) == (0.85, 0.75)  # YEAR ends 31 December 2025


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(0, 40),
    st.integers(0, 40),
    st.lists(st.tuples(st.integers(0, 150), st.integers(1, 20)), max_size=4),
)
def test_adjustments_count_only_inside_their_interval(
    seen: int, to_decision: int, to_treatment: int, pauses: list[tuple[int, int]]
) -> None:
    """The 62-day and 31-day waits, worked out here by walking each adjustment against the intervals
    (first-seen: [referral, first seen); treatment: [decision, treatment)), equal the measure's."""
    import ibis

    from carecontract.measures.definitions import CWT31, CWT62
    from carecontract.measures.pathways import build

    decision = seen + to_decision
    treated = decision + to_treatment
    rows = [(0, "referral"), (seen, "first_seen"), (decision, "decision_to_treat"), (treated, "treatment")]
    rows += [(day, "clock_adjustment") for day, _ in pauses]
    days_of = [None] * 4 + [d for _, d in pauses]
    n = len(rows)
    events = ibis.memtable(
        {
            "record_id": [f"r{i:02d}" for i in range(n)],
            "patient_id": ["p"] * n,
            "event_date": [D0 + timedelta(days=day) for day, _ in rows],
            "event_type": [kind for _, kind in rows],
            "provider_code": ["RJE"] * n,
            "commissioner_code": ["05D"] * n,
            "imd_quintile": [3] * n,
            "referral_route": ["urgent_gp"] + [None] * (n - 1),
            "icd10": [None] * n,
            "tumour_site": [None] * n,
            "stage": [None] * n,
            "modality": [None] * 3 + ["surgery"] + [None] * (n - 4),
            "adjustment_days": days_of,
        },
        schema={
            "record_id": "string",
            "patient_id": "string",
            "event_date": "date",
            "event_type": "string",
            "provider_code": "string",
            "commissioner_code": "string",
            "imd_quintile": "int8",
            "referral_route": "string",
            "icd10": "string",
            "tumour_site": "string",
            "stage": "int8",
            "modality": "string",
            "adjustment_days": "int32",
        },
    )
    built = build(events)
    got62 = built.pathways.select(days=CWT62.elapsed).to_pyarrow().to_pylist()[0]["days"]
    got31 = built.treatments.select(days=CWT31.elapsed).to_pyarrow().to_pylist()[0]["days"]
    first_seen_pause = sum(d for day, d in pauses if 0 <= day < seen)
    treatment_pause = sum(d for day, d in pauses if decision <= day < treated)
    assert got62 == max(0, treated - first_seen_pause - treatment_pause)
    assert got31 == max(0, treated - decision - treatment_pause)
