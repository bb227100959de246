"""Civil registration deaths: the example extract, the place-of-death classification, the round trip."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecontract.imports import deaths
from carecontract.imports.csvsource import WrongHeader
from carecontract.synth.formats import deaths as writer
from tests.national_roundtrip import check_example, round_trip

EXAMPLE = Path(__file__).parents[1] / "examples/national/deaths/civil-registration-deaths.csv"


def test_example_maps_every_registration_or_names_the_field():
    results = list(deaths.map_file(EXAMPLE))
    with open(EXAMPLE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(results) == len(rows) == deaths.count_records(EXAMPLE)  # independent count: the csv module
    places = {r.source_record: r.events[0]["place_of_death"] for r in results if r.events}
    assert places == {
        "civil-registration-deaths.csv:2": "home",
        "civil-registration-deaths.csv:3": "hospital",
        "civil-registration-deaths.csv:4": "hospice",
        "civil-registration-deaths.csv:5": "care_home",
        "civil-registration-deaths.csv:6": "care_home",
        "civil-registration-deaths.csv:7": "other",
        "civil-registration-deaths.csv:11": "other",
    }
    problems = {r.source_record: r.problem for r in results if r.problem}
    assert problems["civil-registration-deaths.csv:8"].startswith("POD_ESTABLISHMENT_TYPE '02'")
    assert problems["civil-registration-deaths.csv:9"].startswith("REG_DATE_OF_DEATH '20250230'")
    assert problems["civil-registration-deaths.csv:10"].startswith("POD_NHS_ESTABLISHMENT '3'")
    event = next(r for r in results if r.events).events[0]
    assert event["record_id"] == "DEATH-70000001:death" and event["provider_code"] == deaths.PROVIDER
    assert event["icd10"] == "C34.9" and event["event_date"] == "2025-01-03"
    for r in results:  # no NHS number in any reason
        assert r.problem is None or "99900000" not in r.problem


@pytest.mark.parametrize(
    ("nhs", "kind", "place"),
    [
        ("1", "01", "hospital"),
        ("1", "21", "care_home"),
        ("2", "19", "hospital"),
        ("2", "33", "care_home"),
        ("1", "83", "hospice"),
        ("2", "83", "hospice"),
        ("1", "06", "other"),
        ("2", "82", "other"),
        ("2", "1", "hospital"),
    ],
)
def test_phe_classification(nhs, kind, place):
    assert deaths.place_of_death("CE001", nhs, kind) == (place, None)


@given(st.text(alphabet="0123456789", min_size=1, max_size=3), st.sampled_from(["1", "2", "3", ""]))
def test_every_establishment_is_classified_or_rejected(kind, nhs):
    place, problem = deaths.place_of_death("CE001", nhs, kind)
    assert (place is None) != (problem is None)
    assert place in (None, "hospital", "care_home", "hospice", "other")
    if problem:
        assert "'" in problem  # names the value


def test_home_and_elsewhere():
    assert deaths.place_of_death("H", "", "") == ("home", None)
    assert deaths.place_of_death("E", "", "") == ("other", None)
    assert deaths.place_of_death("", "", "")[1] == "POD_CODE '': missing"


def test_missing_field_refuses_the_file(tmp_path):
    bad = tmp_path / "d.csv"
    bad.write_text("MORTALITY_IDENT,DEC_NHS_NUMBER\n1,9990000018\n")
    with pytest.raises(WrongHeader, match="the header lacks"):
        list(deaths.map_file(bad))


def test_round_trip_gives_the_same_measures(tmp_path):
    # the registration carries no usual-residence type, so the local measure is not fed from it
    plain, imported, carried = round_trip(deaths, writer, "MORTALITY_IDENT", tmp_path, ("died_where_usually_lived",))
    assert carried > 100
    assert imported == plain


def test_example_through_the_driver_reconciles_and_stores_no_nhs_number(tmp_path):
    check_example(
        "deaths",
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


def test_map_file_streams(tmp_path):
    """Memory stays bounded whatever the extract's size: 100,000 registrations, a peak far below the file."""
    import tracemalloc

    header, row = EXAMPLE.read_text().splitlines()[:2]
    big = tmp_path / "big.csv"
    with open(big, "w") as handle:
        handle.write(header + "\n")
        for n in range(100_000):
            handle.write(row.replace("70000001", str(80_000_000 + n), 1) + "\n")
    tracemalloc.start()
    mapped = sum(1 for r in deaths.map_file(big) if r.events)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert mapped == 100_000 == deaths.count_records(big)
    assert peak < big.stat().st_size / 10, (peak, big.stat().st_size)
