"""SUS/HES admitted patient care: the example extract, the code tables, the round trip."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecontract.imports import apc
from carecontract.synth.formats import apc as writer
from tests.national_roundtrip import check_example, round_trip

EXAMPLE = Path(__file__).parents[1] / "examples/national/apc/hes-apc-episodes.csv"
ROW = {
    "EPIKEY": "1",
    "NEWNHSNO": "9990000018",
    "ADMIDATE": "2024-05-14",
    "ADMIMETH": "21",
    "PROCODE3": "RJE",
    "CCG_RESPONSIBILITY": "05D",
    "DIAG_4_01": "C349",
}


def test_example_maps_every_episode_or_names_the_field():
    results = list(apc.map_file(EXAMPLE))
    with open(EXAMPLE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(results) == len(rows) == apc.count_records(EXAMPLE)
    events = {e["record_id"]: e for r in results for e in r.events}
    assert set(events) == {
        "APC-300000000001:adm",
        "APC-300000000002:surgery-2024-06-03",
        "APC-300000000003:chemotherapy-2024-06-10",  # X72.3 and X71.2 the same day: one treatment
        "APC-300000000004:adm",
        "APC-300000000004:surgery-2024-07-03",  # dated by OPDATE_01, Y75.1 (a method) ignored
        "APC-300000000009:radiotherapy-2024-08-20",
        "APC-300000000010:adm",  # 28: an emergency in data before 2013/14
    }
    assert events["APC-300000000001:adm"]["cost_gbp"] == "3931.61"
    assert events["APC-300000000001:adm"]["icd10"] == "C34.9"
    assert events["APC-300000000004:adm"]["cost_gbp"] == "8840.55"  # the spell's cost on the admission
    assert events["APC-300000000004:surgery-2024-07-03"]["cost_gbp"] is None
    assert events["APC-300000000002:surgery-2024-06-03"]["cost_gbp"] == "5120.00"
    problems = {r.source_record: r.problem for r in results if r.problem}
    assert problems["hes-apc-episodes.csv:6"].startswith("ADMIMETH '11': not an emergency")  # a hernia repair
    assert problems["hes-apc-episodes.csv:7"] == "ADMIMETH '99': not known (a default code)"
    assert problems["hes-apc-episodes.csv:8"].startswith("ADMIMETH '27': not a code")
    assert problems["hes-apc-episodes.csv:9"] == "OPERTN_4_01 'XX1': not an OPCS-4 code"


@pytest.mark.parametrize("code", ["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"])
def test_every_emergency_code_is_an_emergency_admission(code):
    mapped = apc.map_row("x:2", {**ROW, "ADMIMETH": code})
    assert [e["event_type"] for e in mapped.events] == ["emergency_admission"]


@pytest.mark.parametrize("code", ["11", "12", "13", "31", "32", "81", "82", "83"])
def test_other_methods_make_no_admission(code):
    mapped = apc.map_row("x:2", {**ROW, "ADMIMETH": code})
    assert mapped.problem and not mapped.events


@pytest.mark.parametrize(
    ("code", "cancer", "kind"),
    [
        ("X701", False, "chemotherapy"),
        ("X745", True, "chemotherapy"),
        ("X653", False, "radiotherapy"),
        ("X671", True, None),
        ("E541", True, "surgery"),
        ("E541", False, None),
        ("Y922", True, None),
        ("Z941", True, None),
    ],
)
def test_opcs_modality(code, cancer, kind):
    assert apc.modality(code, cancer) == kind


@given(st.text(min_size=0, max_size=3))
def test_an_admission_method_is_known_or_rejected(code):
    mapped = apc.map_row("x:2", {**ROW, "ADMIMETH": code})
    known = code.upper() in apc.ADMISSION_METHODS
    assert bool(mapped.events) == (known and apc.ADMISSION_METHODS[code.upper()][1])
    if not known:
        assert mapped.problem.startswith("ADMIMETH")


def test_a_bad_cost_or_hrg_is_rejected_by_name():
    assert apc.map_row("x:2", {**ROW, "TARIFF_TOTAL_PAYMENT": "£12"}).problem.startswith("TARIFF_TOTAL_PAYMENT '£12'")
    assert apc.map_row("x:2", {**ROW, "SUSHRG": "S12"}).problem.startswith("SUSHRG 'S12'")
    assert apc.map_row("x:2", {**ROW, "DIAG_4_01": "34C"}).problem.startswith("DIAG_4_01 '34C'")


def test_round_trip_gives_the_same_measures(tmp_path):
    plain, imported, carried = round_trip(apc, writer, "EPIKEY", tmp_path)
    assert carried > 100
    assert imported == plain


def test_example_through_the_driver_reconciles_and_stores_no_nhs_number(tmp_path):
    check_example(
        "apc",
        EXAMPLE,
        tmp_path,
        [
            "9990000018",
            "9990000026",
            "9990000034",
            "9990000042",
            "9990000050",
            "9990000069",
            "9990000077",
            "9990000085",
        ],
    )
