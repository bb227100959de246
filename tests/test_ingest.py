"""Ingest: every row accepted or quarantined with its reasons, nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing
import os
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecontract.records import schema
from carecontract.records.ingest import ingest
from carecontract.records.reading import UnreadableFile
from carecontract.records.store import Store
from tests.conftest import VALID_ROW, write_csv

AS_OF = date(2026, 1, 1)


def run(tmp_path: Path, rows: list[dict[str, str]], name: str = "in.csv", store: str = "store"):
    return ingest([write_csv(tmp_path / name, rows)], tmp_path / store, as_of=AS_OF)


def test_valid_row_is_accepted(tmp_path: Path) -> None:
    result = run(tmp_path, [VALID_ROW])
    assert (result.read, result.accepted, result.quarantined, result.reasons) == (1, 1, 0, {})
    events = pa.table(Store(tmp_path / "store").connect().sql("SELECT * FROM events"))
    assert events.column("record_id").to_pylist() == ["r1"]
    assert "nhs_number" not in events.column_names


DIAGNOSIS = {**VALID_ROW, "event_type": "diagnosis", "icd10": "C34.1", "stage": "3", "referral_route": ""}
TREATMENT = {**VALID_ROW, "event_type": "treatment", "modality": "surgery", "referral_route": ""}

BAD_VALUES = [
    ({"record_id": ""}, "missing_record_id"),
    ({"nhs_number": ""}, "missing_nhs_number"),
    ({"nhs_number": "9434765918"}, "invalid_nhs_number"),
    ({"nhs_number": "123"}, "invalid_nhs_number"),
    ({"event_date": "05/01/2024"}, "invalid_event_date"),
    ({"event_date": "2023-02-29"}, "invalid_event_date"),
    ({"event_date": "2024-13-01"}, "invalid_event_date"),
    ({"event_date": "2026-01-02"}, "future_event_date"),
    ({"event_date": "1899-12-31"}, "implausible_event_date"),
    ({"event_date": ""}, "missing_event_date"),
    ({"event_type": "referal"}, "unknown_event_type"),
    ({"provider_code": ""}, "missing_provider_code"),
    ({"provider_code": "R J E"}, "invalid_provider_code"),
    ({"commissioner_code": ""}, "missing_commissioner_code"),
    ({"referral_route": ""}, "missing_referral_route"),
    ({"referral_route": "walk_in"}, "invalid_referral_route"),
    ({"icd10": "C3"}, "invalid_icd10"),
    ({"stage": "5"}, "invalid_stage"),
    ({"stage": "IV"}, "invalid_stage"),
    ({"modality": "magic"}, "invalid_modality"),
    ({"adjustment_days": "-3"}, "invalid_adjustment_days"),
    ({"adjustment_days": "ten"}, "invalid_adjustment_days"),
    ({"place_of_death": "street"}, "invalid_place_of_death"),
    ({"usual_residence": "castle"}, "invalid_usual_residence"),
    ({"score": "11"}, "invalid_score"),
    ({"score": "nan"}, "invalid_score"),
    ({"cost_gbp": "£12.00"}, "invalid_cost_gbp"),
    ({"cost_gbp": "1,200"}, "invalid_cost_gbp"),
    ({"cost_gbp": "12.345"}, "invalid_cost_gbp"),
    ({"age": "121"}, "invalid_age"),
    ({"age": "4.5"}, "invalid_age"),
    ({"sex": "Q"}, "invalid_sex"),
    ({"imd_quintile": "6"}, "invalid_imd_quintile"),
    ({"ethnicity": "I"}, "invalid_ethnicity"),
]

EVENT_SPECIFIC = [
    ({**DIAGNOSIS, "icd10": ""}, "missing_icd10"),
    ({**DIAGNOSIS, "icd10": "I10"}, "diagnosis_not_cancer"),
    ({**DIAGNOSIS, "icd10": "D10.1"}, "diagnosis_not_cancer"),
    ({**TREATMENT, "modality": ""}, "missing_modality"),
    ({**VALID_ROW, "event_type": "clock_adjustment", "referral_route": ""}, "missing_adjustment_days"),
    ({**VALID_ROW, "event_type": "death", "referral_route": ""}, "missing_place_of_death"),
    ({**VALID_ROW, "event_type": "patient_experience", "referral_route": ""}, "missing_score"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_VALUES)
def test_each_bad_value_is_quarantined_with_its_reason(tmp_path: Path, change: dict, reason: str) -> None:
    result = run(tmp_path, [{**VALID_ROW, **change}])
    assert (result.accepted, result.quarantined) == (0, 1)
    assert reason in result.reasons


@pytest.mark.parametrize(("row", "reason"), EVENT_SPECIFIC)
def test_event_specific_fields(tmp_path: Path, row: dict, reason: str) -> None:
    result = run(tmp_path, [row])
    assert list(result.reasons) == [reason]


def test_normalisation_is_lenient_about_case_and_spaces(tmp_path: Path) -> None:
    row = {
        **DIAGNOSIS,
        "event_type": " Diagnosis ",
        "icd10": "c34.1",
        "nhs_number": "943 476 5919",
        "provider_code": "rje",
    }
    assert run(tmp_path, [row]).accepted == 1
    events = Store(tmp_path / "store").connect().execute("SELECT icd10, tumour_site, provider_code FROM events")
    assert events.fetchall() == [("C34.1", "lung", "RJE")]


def test_every_reason_is_reported_not_just_the_first(tmp_path: Path) -> None:
    result = run(tmp_path, [{**VALID_ROW, "nhs_number": "1", "event_date": "yesterday", "provider_code": ""}])
    assert set(result.reasons) == {"invalid_nhs_number", "invalid_event_date", "missing_provider_code"}


def test_pathway_order_and_death(tmp_path: Path) -> None:
    rows = [
        {**VALID_ROW, "record_id": "ref", "event_date": "2024-03-01"},
        {**TREATMENT, "record_id": "early", "event_date": "2024-02-01"},
        {**TREATMENT, "record_id": "fine", "event_date": "2024-04-01"},
        {
            **VALID_ROW,
            "record_id": "died",
            "event_type": "death",
            "place_of_death": "home",
            "event_date": "2024-05-01",
            "referral_route": "",
        },
        {**TREATMENT, "record_id": "ghost", "event_date": "2024-06-01"},
        # an emergency admission before the referral is how emergency presentations start: allowed
        {
            **VALID_ROW,
            "record_id": "ae",
            "event_type": "emergency_admission",
            "event_date": "2024-02-20",
            "referral_route": "",
        },
    ]
    result = run(tmp_path, rows)
    q = dict(Store(tmp_path / "store").connect().execute("SELECT record_id, reasons FROM quarantine").fetchall())
    assert q == {"early": ["before_first_referral"], "ghost": ["after_death"]}
    assert result.accepted == 4


def test_a_row_breaking_both_order_rules_gets_both_reasons(tmp_path: Path) -> None:
    rows = [
        {**VALID_ROW, "record_id": "ref", "event_date": "2024-03-01"},
        {
            **VALID_ROW,
            "record_id": "died",
            "event_type": "death",
            "place_of_death": "home",
            "event_date": "2023-05-01",
            "referral_route": "",
        },
        {**TREATMENT, "record_id": "odd", "event_date": "2024-01-01"},
    ]
    run(tmp_path, rows)
    q = dict(Store(tmp_path / "store").connect().execute("SELECT record_id, reasons FROM quarantine").fetchall())
    assert q["odd"] == ["before_first_referral", "after_death"]


def test_order_checks_see_the_store(tmp_path: Path) -> None:
    run(tmp_path, [{**VALID_ROW, "record_id": "ref", "event_date": "2024-03-01"}], "a.csv")
    result = run(tmp_path, [{**TREATMENT, "record_id": "t", "event_date": "2024-01-01"}], "b.csv")
    assert result.reasons == {"before_first_referral": 1}


def test_duplicates_within_a_file_keep_the_first_valid_copy(tmp_path: Path) -> None:
    rows = [{**VALID_ROW, "event_date": "bad"}, VALID_ROW, VALID_ROW]
    result = run(tmp_path, rows)
    assert (result.accepted, result.reasons) == (1, {"invalid_event_date": 1, "duplicate_record_id": 1})
    rows_kept = Store(tmp_path / "store").connect().execute("SELECT source_row FROM events").fetchall()
    assert rows_kept == [(2,)]


def test_reingesting_the_same_file_adds_nothing(tmp_path: Path) -> None:
    rows = [{**VALID_ROW, "record_id": f"r{i}"} for i in range(5)] + [{**VALID_ROW, "record_id": "bad", "stage": "9"}]
    first = run(tmp_path, rows)
    second = run(tmp_path, rows)
    assert (first.accepted, first.quarantined) == (5, 1)
    assert second.no_op and (second.read, second.accepted, second.quarantined) == (0, 0, 0)
    assert second.skipped == {str(tmp_path / "in.csv"): first.batch_id}
    con = Store(tmp_path / "store").connect()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    assert con.execute("SELECT count(*), sum(read) FROM batches").fetchone() == (1, 6)


def test_the_same_rows_in_another_file_are_unchanged_not_duplicates(tmp_path: Path) -> None:
    rows = [{**VALID_ROW, "record_id": f"r{i}"} for i in range(5)] + [{**VALID_ROW, "record_id": "bad", "stage": "9"}]
    run(tmp_path, rows)
    second = run(tmp_path, [*rows, {**VALID_ROW, "record_id": "r9"}], "again.csv")  # other bytes
    assert second.counts["unchanged"] == 5 and second.counts["new"] == 1
    assert (second.accepted, second.quarantined, second.reasons) == (6, 1, {"invalid_stage": 1})
    con = Store(tmp_path / "store").connect()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 6
    # the first submission's bad row is superseded on the open list by the second's (same record id)
    assert con.execute("SELECT batch_id FROM quarantine").fetchall() == [(second.batch_id,)]


def test_a_second_ingest_appends(tmp_path: Path) -> None:
    run(tmp_path, [VALID_ROW], "a.csv")
    run(tmp_path, [{**VALID_ROW, "record_id": "r2"}], "b.csv")
    assert Store(tmp_path / "store").connect().execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_malformed_lines_are_quarantined_raw(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [VALID_ROW])
    with open(path, "a", newline="") as handle:
        handle.write("r9,9434765919,2024-01-01\r\n")
    result = ingest([path], tmp_path / "store", as_of=AS_OF)
    assert (result.read, result.accepted, result.reasons) == (2, 1, {"malformed_row": 1})
    con = Store(tmp_path / "store").connect()
    raw = con.execute("SELECT raw_line, source_row, source_line, nhs_number, patient_id IS NOT NULL FROM quarantine")
    # the second record, on physical line 3; its NHS number masked in the line, a pseudonym beside it
    assert raw.fetchall() == [("r9,##########,2024-01-01", 2, 3, None, True)]


def test_mixed_line_endings_lose_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [VALID_ROW])  # csv module writes CRLF
    with open(path, "a", newline="") as handle:
        handle.write("r9,9434765919,2024-01-01\n" + ",".join(["r10", *list(VALID_ROW.values())[1:]]) + "\r\n")
    result = ingest([path], tmp_path / "store", as_of=AS_OF)
    assert result.read == 3
    assert result.read == result.accepted + result.quarantined
    # no lenient parse: the short line and the one with an extra field are quarantined (as they are in
    # the same file with LF endings), nothing is dropped or truncated, and the user is told
    assert result.reasons == {"malformed_row": 2}
    assert result.sources[0].mixed_line_endings and result.sources[0].normalised
    assert "mixed line endings" in result.sources[0].notes()[0]


def test_parquet_input(tmp_path: Path) -> None:
    table = pa.table({c: [VALID_ROW.get(c)] for c in (*schema.REQUIRED_COLUMNS, "referral_route")})
    pq.write_table(table, tmp_path / "in.parquet")
    result = ingest([tmp_path / "in.parquet"], tmp_path / "store", as_of=AS_OF)
    assert (result.read, result.accepted) == (1, 1)


def test_parquet_rows_keep_their_position_and_their_text_across_row_groups(tmp_path: Path) -> None:
    """Parquet is judged where it lies: each row's position comes from the file, not a copy of it."""
    rows = [{**VALID_ROW, "record_id": f"r{i}", "stage": ""} for i in range(1, 7)]
    rows[1]["stage"] = "9"  # row 2: a bad enum; row 5 (below): a typed age out of range
    table = pa.Table.from_pylist(rows).append_column("age", pa.array([40, 41, 42, 43, 130, 45], pa.int64()))
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=2)  # three row groups
    assert pq.ParquetFile(tmp_path / "in.parquet").metadata.num_row_groups == 3
    result = ingest([tmp_path / "in.parquet"], tmp_path / "store", as_of=AS_OF)
    assert (result.read, result.accepted, result.reasons) == (6, 4, {"invalid_stage": 1, "invalid_age": 1})
    con = Store(tmp_path / "store").connect()
    quarantined = con.execute("SELECT source_row, record_id, stage, age FROM quarantine ORDER BY source_row").fetchall()
    assert quarantined == [(2, "r2", "9", "41"), (5, "r5", "", "130")]
    accepted = con.execute("SELECT source_row, record_id FROM events ORDER BY source_row").fetchall()
    assert accepted == [(1, "r1"), (3, "r3"), (4, "r4"), (6, "r6")]


@pytest.mark.parametrize("order", [("a.csv", "b.parquet"), ("b.parquet", "a.csv")])
def test_across_csv_and_parquet_the_first_file_keeps_a_duplicated_record(tmp_path: Path, order: tuple) -> None:
    write_csv(tmp_path / "a.csv", [VALID_ROW])
    pq.write_table(pa.Table.from_pylist([VALID_ROW]), tmp_path / "b.parquet")
    result = ingest([tmp_path / name for name in order], tmp_path / "store", as_of=AS_OF)
    assert (result.read, result.accepted, result.reasons) == (2, 1, {"duplicate_record_id": 1})
    con = Store(tmp_path / "store").connect()
    kept = con.execute("SELECT source_file, source_row FROM events").fetchall()
    dropped = con.execute("SELECT source_file, source_row FROM quarantine").fetchall()
    assert kept == [(str(tmp_path / order[0]), 1)]
    assert dropped == [(str(tmp_path / order[1]), 1)]


def test_extra_columns_are_ignored_and_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [VALID_ROW], (*schema.REQUIRED_COLUMNS, "referral_route", "notes"))
    result = ingest([path], tmp_path / "store", as_of=AS_OF)
    assert result.accepted == 1
    assert result.sources[0].ignored_columns == ["notes"]


# -- files that cannot be read at all ----------------------------------------------------------
def _unreadable_cases(tmp_path: Path) -> dict[str, Path]:
    cases = {}
    cases["empty"] = tmp_path / "empty.csv"
    cases["empty"].write_text("")
    cases["header only"] = write_csv(tmp_path / "header.csv", [])
    cases["missing columns"] = tmp_path / "cols.csv"
    cases["missing columns"].write_text("record_id,nhs_number\nr1,9434765919\n")
    cases["binary"] = tmp_path / "data.xlsx"
    cases["binary"].write_bytes(b"PK\x03\x04\x00\x00binary")
    cases["missing file"] = tmp_path / "nope.csv"
    cases["directory"] = tmp_path
    cases["bad parquet"] = tmp_path / "bad.parquet"
    cases["bad parquet"].write_bytes(b"PAR1 not really parquet")
    cases["parquet, no rows"] = tmp_path / "none.parquet"
    pq.write_table(pa.Table.from_pylist([VALID_ROW]).slice(0, 0), cases["parquet, no rows"])
    # a sound footer over damaged data pages: only decoding the rows finds it
    cases["damaged parquet"] = tmp_path / "damaged.parquet"
    many = [{**VALID_ROW, "record_id": f"r{i}"} for i in range(2000)]
    pq.write_table(pa.Table.from_pylist(many), cases["damaged parquet"], compression="none")
    damaged = bytearray(cases["damaged parquet"].read_bytes())
    damaged[100:3000] = b"\xab" * 2900
    cases["damaged parquet"].write_bytes(bytes(damaged))
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "header only",
        "missing columns",
        "binary",
        "missing file",
        "directory",
        "bad parquet",
        "parquet, no rows",
        "damaged parquet",
    ],
)
def test_unreadable_files_write_nothing(tmp_path: Path, case: str) -> None:
    good = write_csv(tmp_path / "good.csv", [VALID_ROW])
    bad = _unreadable_cases(tmp_path)[case]
    with pytest.raises(UnreadableFile) as info:
        ingest([good, bad], tmp_path / "store", as_of=AS_OF)
    assert "\n" not in str(info.value)
    assert str(bad) in str(info.value)
    assert not Store(tmp_path / "store").exists()


def test_missing_columns_message_names_them(tmp_path: Path) -> None:
    bad = _unreadable_cases(tmp_path)["missing columns"]
    with pytest.raises(UnreadableFile, match="missing required column\\(s\\) event_date, event_type"):
        ingest([bad], tmp_path / "store")


# -- crash safety ------------------------------------------------------------------------------
def _ingest_then_die_before_commit(source: str, store: str) -> None:
    def die(*args: object, **kwargs: object) -> None:
        os._exit(9)  # a kill: no cleanup, no exception handlers

    Store._commit = die  # type: ignore[method-assign]
    ingest([source], store, as_of=AS_OF)


def test_a_killed_ingest_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run(tmp_path, [VALID_ROW], "a.csv")
    manifest_before = (store / "manifest.json").read_bytes()
    second = write_csv(
        tmp_path / "b.csv", [{**VALID_ROW, "record_id": "r2"}, {**VALID_ROW, "record_id": "x", "stage": "7"}]
    )
    process = multiprocessing.get_context("fork").Process(
        target=_ingest_then_die_before_commit, args=(str(second), str(store))
    )
    process.start()
    process.join(60)
    assert process.exitcode == 9
    # the batch's files were written, but the store did not change
    assert len(list((store / "events").iterdir())) == 2
    assert (store / "manifest.json").read_bytes() == manifest_before
    assert Store(store).connect().execute("SELECT count(*) FROM events").fetchone()[0] == 1
    # the next ingest sweeps the orphans and works
    result = ingest([second], store, as_of=AS_OF)
    assert result.accepted == 1
    assert len(list((store / "events").iterdir())) == 2
    assert Store(store).connect().execute("SELECT count(*) FROM events").fetchone()[0] == 2


# -- no patient-identifiable data -------------------------------------------------------------
def test_raw_nhs_numbers_only_in_quarantine_of_rows_failing_that_field(tmp_path: Path) -> None:
    rows = [
        VALID_ROW,
        {**VALID_ROW, "record_id": "r2", "stage": "9"},  # bad for another reason: pseudonym only
        {**VALID_ROW, "record_id": "r3", "nhs_number": "9434765918"},  # bad NHS number: kept raw
    ]
    run(tmp_path, rows)
    con = Store(tmp_path / "store").connect()
    q = dict(con.execute("SELECT record_id, nhs_number FROM quarantine").fetchall())
    assert q == {"r2": None, "r3": "9434765918"}
    store = tmp_path / "store"
    for path in store.rglob("*.parquet"):
        text = str(pa.table(duckdb.sql(f"SELECT * FROM read_parquet('{path}')")).to_pylist())
        if "events" in str(path.parent):
            assert "9434765919" not in text and "9434765918" not in text
    catalog = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    assert catalog.execute("SELECT count(*) FROM events").fetchone()[0] == 1


# -- properties --------------------------------------------------------------------------------
valid_values = {
    "record_id": st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=12),
    "nhs_number": st.sampled_from(["9434765919", "4010232137", "9876543210"]),
    "event_date": st.dates(date(1990, 1, 1), date(2025, 12, 31)).map(date.isoformat),
    "provider_code": st.sampled_from(["RJE", "RL4", "RRE", "HDMH1"]),
    "commissioner_code": st.sampled_from(["05D", "05G", "05V", "05W"]),
}


@st.composite
def valid_rows(draw: st.DrawFn) -> dict[str, str]:
    row = {k: draw(s) for k, s in valid_values.items()}
    kind = draw(st.sampled_from(["referral", "emergency_admission", "palliative_register", "hospice_stay"]))
    row["event_type"] = kind
    if kind == "referral":
        row["referral_route"] = draw(st.sampled_from(schema.REFERRAL_ROUTES))
    row["cost_gbp"] = draw(st.sampled_from(["", "0", "12.5", "1234.56"]))
    row["age"] = str(draw(st.integers(0, 120)))
    row["sex"] = draw(st.sampled_from(schema.SEXES))
    row["imd_quintile"] = str(draw(st.integers(1, 5)))
    return row


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_rows())
def test_a_valid_row_is_never_quarantined(tmp_path_factory: pytest.TempPathFactory, row: dict) -> None:
    tmp = tmp_path_factory.mktemp("v")
    result = ingest([write_csv(tmp / "in.csv", [row])], tmp / "store", as_of=AS_OF)
    assert result.reasons == {}
    assert result.accepted == 1


# any text but NUL: a NUL byte marks a file as binary, which is refused whole (see reading.detect_format)
arbitrary_cell = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["", "9434765919", "2024-01-01", "referral", "RJE"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(valid_rows(), st.fixed_dictionaries({c: arbitrary_cell for c in schema.ALL_COLUMNS})),
        min_size=1,
        max_size=25,
    )
)
def test_read_equals_accepted_plus_quarantined(tmp_path_factory: pytest.TempPathFactory, rows: list[dict]) -> None:
    tmp = tmp_path_factory.mktemp("p")
    path = write_csv(tmp / "in.csv", rows)
    result = ingest([path], tmp / "store", as_of=AS_OF)
    assert result.read == result.accepted + result.quarantined
    con = Store(tmp / "store").connect()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == result.accepted
    assert con.execute("SELECT count(*) FROM quarantine WHERE len(reasons) > 0").fetchone()[0] == result.quarantined
    # every CSV record became exactly one row: the count of records in the file as Python's csv module sees them
    assert result.read == len(rows)
