"""The synthetic economy: deterministic, internally consistent, calibrated, and honest about its errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from carecontract.records import nhs_number
from carecontract.records.ingest import ingest
from carecontract.records.pseudonymise import PseudonymKey
from carecontract.records.store import Store
from carecontract.synth.economy import default_start, generate
from carecontract.synth.errors import ERROR_KINDS
from carecontract.synth.writer import write_economy

START = date(2022, 4, 1)
AS_OF = date(2026, 1, 1)


@pytest.fixture(scope="module")
def clean() -> object:
    return generate(200_000, 2, seed=11, start=START)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    economy = generate(150_000, 2, seed=5, start=START, error_rate=0.02)
    out = tmp_path_factory.mktemp("synth")
    files = write_economy(economy, out / "data")
    result = ingest(files, out / "store", as_of=AS_OF, key=PseudonymKey(b"synth-test"))
    return out, economy, result


def test_same_seed_same_data() -> None:
    a = generate(30_000, 1, seed=3, start=START, error_rate=0.01)
    b = generate(30_000, 1, seed=3, start=START, error_rate=0.01)
    assert a.events.equals(b.events)
    assert a.injected.equals(b.injected)


def test_different_seed_different_data() -> None:
    a = generate(30_000, 1, seed=3, start=START)
    b = generate(30_000, 1, seed=4, start=START)
    assert not a.events.equals(b.events)


def test_nhs_numbers_are_valid_and_from_the_test_range(clean: object) -> None:
    numbers = np.unique(np.asarray(clean.events.column("nhs_number").to_numpy()))
    assert all(nhs_number.is_valid(str(n)) for n in numbers[:5000])
    assert (numbers >= 9_000_000_000).all()


def test_dates_stay_in_the_window(clean: object) -> None:
    dates = clean.events.column("event_date")
    assert pa.compute.min(dates).as_py() >= START
    assert pa.compute.max(dates).as_py() < date(2024, 4, 1)


def test_a_clean_economy_ingests_with_nothing_quarantined(clean: object, tmp_path: Path) -> None:
    files = write_economy(clean, tmp_path / "data", fmt="parquet")
    result = ingest(files, tmp_path / "store", as_of=AS_OF)
    assert result.quarantined == 0, result.reasons
    assert result.accepted == clean.events.num_rows


def test_every_injected_error_is_found_with_its_reason_and_nothing_else(ingested: tuple) -> None:
    out, economy, result = ingested
    assert economy.injected.num_rows == result.quarantined
    assert set(economy.injected.column("kind").to_pylist()) == set(ERROR_KINDS)
    con = Store(out / "store").connect()
    con.register("injected", pacsv.read_csv(out / "data" / "injected_errors.csv"))
    missed = con.execute(
        "SELECT i.kind, count(*) FROM injected i WHERE NOT EXISTS (SELECT 1 FROM quarantine q "
        "WHERE q.record_id = i.record_id AND list_contains(q.reasons, i.expected_reason)) GROUP BY 1"
    ).fetchall()
    assert missed == []


def test_calibration_lands_near_public_figures(clean: object) -> None:
    con = duckdb.connect()
    con.register("e", clean.events)
    early = dict(
        con.execute(
            "SELECT CASE WHEN icd10 LIKE 'C34%' THEN 'lung' WHEN icd10 LIKE 'C50%' THEN 'breast' "
            "WHEN icd10 LIKE 'C61%' THEN 'prostate' ELSE 'other' END AS site, "
            "avg((CAST(stage AS INT) <= 2)::INT) FROM e WHERE event_type = 'diagnosis' GROUP BY site"
        ).fetchall()
    )
    assert early["lung"] < 0.4 < 0.7 < early["breast"]
    assert 0.4 < early["prostate"] < 0.7
    places = dict(
        con.execute(
            "SELECT place_of_death, count(*) / sum(count(*)) OVER () FROM e WHERE event_type = 'death' GROUP BY 1"
        ).fetchall()
    )
    assert 0.38 < places["hospital"] < 0.52
    assert 0.22 < places["home"] < 0.36
    assert 0.15 < places["care_home"] < 0.27
    # about 600 cancers per 100,000 a year
    diagnoses = con.execute("SELECT count(*) FROM e WHERE event_type = 'diagnosis'").fetchone()[0]
    assert 500 < diagnoses / 200_000 * 100_000 / 2 < 700
    # deprivation gradient: the most deprived present as emergencies more often
    gradient = dict(
        con.execute(
            "SELECT imd_quintile, avg((referral_route = 'emergency')::INT) FROM e "
            "WHERE event_type = 'referral' GROUP BY 1"
        ).fetchall()
    )
    assert gradient[1] > gradient[5]


def test_the_situations_the_national_rules_treat_specially_all_occur(clean: object) -> None:
    """Counted straight from the events (not through the measures): re-referrals while a pathway is
    open, subsequent treatments with their own decisions, breast symptomatic referrals, emergency
    admissions that lead to a diagnosis with no referral, hospice and religious-establishment deaths."""
    con = duckdb.connect()
    con.register("e", clean.events)

    def one(sql: str) -> float:
        return con.execute(sql).fetchone()[0]

    referrals = one("SELECT count(*) FROM e WHERE event_type = 'referral'")
    breast = one("SELECT count(*) FROM e WHERE event_type = 'referral' AND referral_route = 'breast_symptomatic'")
    assert 0.03 < breast / referrals < 0.12
    per_patient = """
        SELECT nhs_number,
               count(*) FILTER (WHERE event_type = 'referral') AS referrals,
               min(event_date) FILTER (WHERE event_type = 'referral') AS first_referral,
               max(event_date) FILTER (WHERE event_type = 'referral') AS last_referral,
               min(event_date) FILTER (WHERE event_type = 'diagnosis') AS diagnosed,
               min(event_date) FILTER (WHERE event_type = 'emergency_admission') AS admitted,
               count(*) FILTER (WHERE event_type = 'treatment') AS treatments,
               count(*) FILTER (WHERE event_type = 'decision_to_treat') AS decisions
        FROM e GROUP BY nhs_number"""
    con.execute(f"CREATE TABLE p AS {per_patient}")
    diagnosed = one("SELECT count(*) FROM p WHERE diagnosed IS NOT NULL")
    # a second referral dated after the first and before the diagnosis: one open pathway
    while_open = one(
        "SELECT count(*) FROM p WHERE referrals >= 2 AND last_referral > first_referral AND last_referral < diagnosed"
    )
    assert 0.01 < while_open / diagnosed < 0.06
    no_referral = one(
        "SELECT count(*) FROM p WHERE diagnosed IS NOT NULL AND referrals = 0 AND admitted <= diagnosed"
        " AND diagnosed - admitted <= 28"
    )
    assert 0.03 < no_referral / diagnosed < 0.2  # emergency presentations are ~15-25% of cancers
    assert one("SELECT count(*) FROM p WHERE diagnosed IS NOT NULL AND referrals = 0 AND admitted IS NULL") == 0
    subsequent = one("SELECT count(*) FROM p WHERE treatments >= 2 AND decisions >= 2")
    assert 0.15 < subsequent / diagnosed < 0.5
    deaths = one("SELECT count(*) FROM e WHERE event_type = 'death'")
    hospice = one("SELECT count(*) FROM e WHERE event_type = 'death' AND place_of_death = 'hospice'")
    assert 0.03 < hospice / deaths < 0.15
    assert one("SELECT count(*) FROM e WHERE place_of_death = 'religious_establishment'") > 0


def test_default_start_is_whole_contract_years_before_today() -> None:
    assert default_start(3, date(2026, 11, 22)) == date(2023, 4, 1)
    assert default_start(3, date(2026, 3, 31)) == date(2022, 4, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"population": 10}, "population"), ({"years": 0}, "years"), ({"error_rate": 0.9}, "error_rate")],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    args = {"population": 10_000, "years": 1, "error_rate": 0.0} | kwargs
    with pytest.raises(ValueError, match=message):
        generate(args["population"], args["years"], error_rate=args["error_rate"], start=START)


def test_chunks_of_one_economy_share_no_person_or_record() -> None:
    """The scale benchmark builds 100M events from chunks; they must not merge people by accident."""
    from carecontract.records.nhs_number import is_valid

    chunks = [generate(20_000, 2, seed=k + 1, start=date(2020, 4, 1), id_offset=k * 20_000) for k in range(3)]
    numbers = [set(c.events.column("nhs_number").to_pylist()) for c in chunks]
    records = [set(c.events.column("record_id").to_pylist()) for c in chunks]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not numbers[i] & numbers[j] and not records[i] & records[j]
    assert all(is_valid(str(n)) for n in set().union(*numbers))


def test_the_synth_modules_import_one_way() -> None:
    """Each module imports only those below it, anywhere in the file (a function-local or
    type-checking import would hide a cycle): rates, table, errors, economy, writer."""
    import ast

    import carecontract.synth

    folder = Path(carecontract.synth.__file__).parent
    layers = ["rates", "table", "errors", "economy", "writer"]
    for rank, name in enumerate(layers):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {
            node.module.removeprefix("carecontract.synth.")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("carecontract.synth.")
        }
        assert imported <= set(layers[:rank]), f"synth/{name}.py imports {sorted(imported - set(layers[:rank]))}"
